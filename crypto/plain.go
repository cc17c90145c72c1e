package crypto

import (
	"bufio"
	"bytes"
	"io"
)

// plainBinlog is an unencrypted binlog or relay log: passed through, its events checked.
type plainBinlog struct{}

func (plainBinlog) recognise(name string, head []byte) (Info, bool) {
	return Info{Kind: KindPlainBinlog, PlainName: name}, bytes.HasPrefix(head, binlogMagic)
}

func (plainBinlog) open(o opening) (plaintext, error) {
	return &plainReader{src: o.src, size: o.size}, nil
}

func (plainBinlog) check(plain io.Reader) (int, error) {
	return checkBinlog(bufio.NewReaderSize(plain, 1<<20))
}

// plainFile is anything else: passed through unchanged.
type plainFile struct{}

func (plainFile) recognise(name string, _ []byte) (Info, bool) {
	return Info{Kind: KindPlain, PlainName: name}, true
}

func (plainFile) open(o opening) (plaintext, error) {
	return &plainReader{src: o.src, size: o.size}, nil
}

func (plainFile) check(io.Reader) (int, error) { return 0, nil }

// plainReader passes a file through unchanged.
type plainReader struct {
	src  io.ReaderAt
	size int64
}

func (p *plainReader) Size() int64 { return p.size }

func (p *plainReader) ReadAt(b []byte, off int64) (int, error) {
	if off >= p.size {
		return 0, io.EOF
	}
	n, err := p.src.ReadAt(b[:min(int64(len(b)), p.size-off)], off)
	if err == nil && n < len(b) {
		err = io.EOF
	}
	return n, err
}
