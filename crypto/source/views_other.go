//go:build !linux

package source

import "errors"

// HugePageSize is the size of a transparent huge page on x86-64 and arm64 (4 KiB pages).
const HugePageSize = 2 << 20

// ViewMinimum is the smallest read worth a view.
const ViewMinimum = 64 << 10

// ErrShrank reports a source file cut shorter than it was when its views were made.
var ErrShrank = errors.New("the file shrank while being read")

// Views are Linux only; elsewhere every read uses pread.
type Views struct{}

func NewViews(src any, size int64) *Views { return nil }

func (m *Views) Read(off int64, n int, use func(b []byte)) (bool, error) { return false, nil }

func (m *Views) Close() {}
