//go:build !linux

package crypto

// mappedFile is Linux only; elsewhere every read uses pread.
type mappedFile struct{}

func newMappedFile(src any, size int64) *mappedFile { return nil }

func (w *mappedFile) read(off int64, n int, use func(b []byte)) (bool, error) { return false, nil }

func (w *mappedFile) close() {}
