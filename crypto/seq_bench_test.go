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

// BenchmarkBinlogReadAt decrypts an in-memory encrypted binlog in 1 MiB reads: the cost the
// mount adds to every byte it serves.
func BenchmarkBinlogReadAt(b *testing.B) {
	var plain bytes.Buffer
	sample.Binlog(&plain, 64<<20, 1, "binlog.000002")
	var enc bytes.Buffer
	w, _ := crypto.NewBinlogWriter(&enc, binlogKeyID, binlogMaster)
	w.Write(plain.Bytes())
	r, err := crypto.Open(bytes.NewReader(enc.Bytes()), int64(enc.Len()), "binlog.000001", staticKeys{binlogKeyID: binlogMaster}, crypto.Options{})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(plain.Len()))
	for b.Loop() {
		for off := int64(0); off < r.Size(); off += int64(len(buf)) {
			r.ReadAt(buf, off)
		}
	}
}
