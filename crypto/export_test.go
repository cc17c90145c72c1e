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
