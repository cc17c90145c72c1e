package crypto

import (
	"io"

	"github.com/mysqllogfs/mysqllogfs/crypto/inflate"
)

// WindowBudgetUsed is, for tests, how many bytes of gzip index windows are charged.
func WindowBudgetUsed() int64 { return inflate.WindowsInUse() }

// IndexWindowBytes is, for tests, the bytes of window a reader's gzip index holds.
func IndexWindowBytes(r *Reader) int64 {
	g, ok := r.data.(*gzipLog)
	if !ok {
		return 0
	}
	return g.WindowBytes()
}

// CheckPlainBinlog is, for tests, verify's check of a plain binlog stream.
func CheckPlainBinlog(r io.Reader) (int, error) { return checkBinlog(r) }

// LimitLayouts sets, for a test, the budget of group layouts every reader shares, and returns
// what puts it back.
func LimitLayouts(limit int64) (restore func()) {
	old := layouts.limit
	layouts.limit = limit
	return func() { layouts.limit = old }
}

// LayoutBytes is, for tests, the budget the layouts hold.
func LayoutBytes() int64 { return layouts.used.Load() }
