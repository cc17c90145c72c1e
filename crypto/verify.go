package crypto

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/mysqllogfs/mysqllogfs/crypto/source"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// Verification is what Verify found of one file: the chain-of-custody record of the source
// and of the plaintext read from it.
type Verification struct {
	Source       string    `json:"source"`
	Size         int64     `json:"size"`
	MTime        time.Time `json:"mtime"`
	SourceSHA256 string    `json:"source_sha256"`
	Kind         Kind      `json:"kind"`
	KeyID        string    `json:"key_id,omitempty"`
	PlainSize    int64     `json:"plaintext_size"`
	PlainSHA256  string    `json:"plaintext_sha256,omitempty"`
	Events       int       `json:"binlog_events,omitempty"`
	Unfinished   bool      `json:"unfinished,omitempty"` // an active log read up to its last complete block
	Err          error     `json:"-"`
	Status       string    `json:"status"`
}

// Verify reads a file end to end through its reader and checks what its format allows:
// a binlog's magic, every event's CRC32 (when the server wrote checksums) and its end_log_pos
// chain; an audit log's padding, gzip CRC32 and size, and a well-formed start. progress, if
// not nil, is told how many bytes of the source have been read, as they are.
func Verify(path string, keys keysrc.Source, progress func(read int64)) Verification {
	v := Verification{Source: path}
	v.Err = v.verify(path, keys, progress)
	v.Status = Describe(v.Err)
	if v.Err == nil && v.Unfinished {
		v.Status = "unfinished" // readable as far as it goes; its end cannot be checked
	}
	return v
}

func (v *Verification) verify(path string, keys keysrc.Source, progress func(int64)) error {
	src, err := source.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	before, err := identity(src)
	if err != nil {
		return err
	}
	v.Size, v.MTime = before.size, time.Unix(0, before.mtime)
	// One open, one pass: the source hash is taken from the very bytes the reader decrypts.
	source := &hashingSource{f: src, sum: sha256.New(), progress: progress}
	err = v.readPlaintext(source, path, keys)
	if hashErr := source.finish(before.size); err == nil {
		err = hashErr
	}
	v.SourceSHA256 = hex.EncodeToString(source.sum.Sum(nil))
	if after, statErr := identity(src); statErr != nil || after != before {
		// Whatever the reading found, it cannot be judged: the bytes moved under it.
		err = fmt.Errorf("the file changed while it was being verified: verify it again once the server has finished writing it")
	}
	return err
}

// readPlaintext opens the plaintext of src, checks what its format allows, and hashes it.
func (v *Verification) readPlaintext(src *hashingSource, path string, keys keysrc.Source) error {
	r, err := Open(src, v.Size, filepath.Base(path), keys, Options{})
	if err != nil {
		head := make([]byte, HeadSize)
		n, _ := src.f.ReadAt(head, 0)
		info := Identify(filepath.Base(path), head[:n])
		v.Kind, v.KeyID = info.Kind, info.KeyID
		return err
	}
	v.Kind, v.KeyID, v.Unfinished = r.Kind, r.KeyID, r.Unfinished()
	plain := sha256.New()
	counted := &countingWriter{w: plain}
	stream := io.TeeReader(io.NewSectionReader(r, 0, 1<<62), counted)
	v.Events, err = r.format.check(stream)
	if err == nil {
		_, err = io.Copy(io.Discard, stream) // the rest, for the plaintext hash
	}
	v.PlainSize = counted.n
	v.PlainSHA256 = hex.EncodeToString(plain.Sum(nil))
	if err == nil && r.Size() != counted.n {
		err = fmt.Errorf("%w: plaintext is %d bytes, its size says %d", ErrCorrupt, counted.n, r.Size())
	}
	return err
}

// fileIdentity is what changes when a file is written: size, mtime and ctime.
type fileIdentity struct{ size, mtime, ctime int64 }

func identity(f *os.File) (fileIdentity, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return fileIdentity{}, err
	}
	return fileIdentity{st.Size, st.Mtim.Nano(), st.Ctim.Nano()}, nil
}

// hashingSource hashes the source in order as the reader reads it: each read that reaches
// past what is hashed so far adds its new bytes. finish hashes what no read reached.
type hashingSource struct {
	f      *os.File
	sum    hash.Hash
	mu     sync.Mutex
	hashed int64

	progress func(hashed int64)
}

func (s *hashingSource) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.f.ReadAt(p, off)
	s.mu.Lock()
	if off <= s.hashed && s.hashed < off+int64(n) {
		s.sum.Write(p[s.hashed-off : n])
		s.hashed = off + int64(n)
		if s.progress != nil {
			s.progress(s.hashed)
		}
	}
	s.mu.Unlock()
	return n, err
}

// finish hashes the source from where the reads stopped to size.
func (s *hashingSource) finish(size int64) error {
	buf := make([]byte, 1<<20)
	for s.hashed < size {
		n, err := s.ReadAt(buf[:min(int64(len(buf)), size-s.hashed)], s.hashed)
		if err != nil && err != io.EOF {
			return err
		}
		if n == 0 {
			return fmt.Errorf("the file shrank while it was being verified")
		}
	}
	return nil
}

// checkAuditLog checks the start; reading on to the end checks padding and gzip trailers.
func checkAuditLog(r io.Reader) error {
	start := make([]byte, 64)
	n, err := io.ReadFull(r, start)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	if n > 0 && !looksLikeLogText(start[:min(n, 16)]) {
		return fmt.Errorf("%w: the plaintext does not start as XML or JSON", ErrCorrupt)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.w.Write(p)
}
