package crypto_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// BenchmarkAuditSequential reads a compressed, encrypted audit log front to back in 1 MiB
// reads, as cat and the kernel's readahead do, and in 8 KiB reads, as small buffers do.
func BenchmarkAuditSequential(b *testing.B) {
	for _, size := range []int{1 << 20, 8 << 10} {
		b.Run(fmt.Sprintf("read=%d", size), func(b *testing.B) { benchmarkSequential(b, size) })
	}
}

func benchmarkSequential(b *testing.B, readSize int) {
	var plain bytes.Buffer
	sample.AuditLog(&plain, sample.AuditXML, 64<<20, 1, true)
	enc := encryptAudit(b, plain.Bytes(), true)
	b.SetBytes(int64(plain.Len()))
	for b.Loop() {
		r, err := crypto.Open(bytes.NewReader(enc), int64(len(enc)), auditName, staticKeys{auditKeyID: []byte(auditSecret)}, crypto.Options{})
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, readSize)
		io.CopyBuffer(struct{ io.Writer }{io.Discard}, io.NewSectionReader(r, 0, 1<<40), buf)
	}
}
