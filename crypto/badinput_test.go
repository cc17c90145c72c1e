package crypto_test

import (
	"bytes"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

const binlogKeyID = "MySQLReplicationKey_test_1"

var binlogMaster = bytes.Repeat([]byte{0x42}, 32)

func encryptedBinlog(t testing.TB) []byte {
	var plain, enc bytes.Buffer
	sample.Binlog(&plain, 64<<10, 1, "binlog.000002")
	w, err := crypto.NewBinlogWriter(&enc, binlogKeyID, binlogMaster)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain.Bytes())
	return enc.Bytes()
}

// header builds a 512-byte encrypted binlog header from raw field bytes.
func header(version byte, fields ...byte) []byte {
	h := append([]byte{0xfd, 'b', 'i', 'n', version}, fields...)
	return append(h, make([]byte, 512-len(h))...)
}

func edit(b []byte, f func([]byte)) []byte {
	c := append([]byte(nil), b...)
	f(c)
	return c
}

// Each bad input gives its typed error, a message, and no panic, at open or at the first read.
func TestBadInput(t *testing.T) {
	binlog := encryptedBinlog(t)
	plainAudit := auditPlaintext(t, sample.AuditXML, 200<<10, 5)
	audit := encryptAudit(t, plainAudit, true)
	keys := staticKeys{binlogKeyID: binlogMaster, auditKeyID: []byte(auditSecret)}
	garbage := make([]byte, 4096)
	crand.Read(garbage)
	fullHeader := binlog[:512]

	// A gzip stream with damaged deflate data, then encrypted: the container is fine.
	gz := run(t, plainAudit, nil, "gzip", "-c")
	badGz := edit(gz, func(b []byte) {
		for i := len(b) / 2; i < len(b)/2+64; i++ {
			b[i] ^= 0x55
		}
	})
	var badGzAudit bytes.Buffer
	w, _ := crypto.NewAuditWriter(&badGzAudit, crypto.AuditPassword{Password: []byte(auditSecret)}, false)
	w.Write(badGz)
	w.Close()

	cases := []struct {
		name string
		file string
		data []byte
		keys keysrc.Source
		want error
	}{
		{"truncated header", "binlog.000001", binlog[:100], keys, crypto.ErrCorrupt},
		{"shorter than header", "binlog.000001", binlog[:511], keys, crypto.ErrCorrupt},
		{"unknown version", "binlog.000001", edit(binlog, func(b []byte) { b[4] = 2 }), keys, crypto.ErrUnsupported},
		{"unknown field type", "binlog.000001", header(1, 0x07, 1, 'x'), keys, crypto.ErrCorrupt},
		{"field past byte 511", "binlog.000001", append(header(1)[:500], append([]byte{0x02}, make([]byte, 11)...)...), keys, crypto.ErrCorrupt},
		{"key ID past byte 511", "binlog.000001", append(header(1)[:505], 0x01, 200, 'a', 'b', 'c', 'd', 'e'), keys, crypto.ErrCorrupt},
		{"missing field", "binlog.000001", header(1, 0x01, 1, 'k'), keys, crypto.ErrCorrupt},
		{"empty key ID", "binlog.000001", header(1, append(append(append([]byte{0x01, 0, 0x02}, make([]byte, 32)...), 0x03), make([]byte, 16)...)...), keys, crypto.ErrCorrupt},
		{"no end marker", "binlog.000001", append(fullHeader[:5:5], bytes.Repeat([]byte{0x03, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, 30)[:507]...), keys, crypto.ErrCorrupt},
		{"wrong binlog key", "binlog.000001", binlog, staticKeys{binlogKeyID: bytes.Repeat([]byte{1}, 32)}, crypto.ErrWrongKey},
		{"binlog key of wrong length", "binlog.000001", binlog, staticKeys{binlogKeyID: []byte("short")}, crypto.ErrWrongKey},
		{"missing binlog key", "binlog.000001", binlog, staticKeys{}, crypto.ErrMissingKey},
		{"no key source", "binlog.000001", binlog, nil, crypto.ErrMissingKey},
		{"header only, 2 bytes of data", "binlog.000001", binlog[:514], keys, crypto.ErrCorrupt},
		{"wrong audit password", auditName, audit, staticKeys{auditKeyID: []byte("nope")}, crypto.ErrWrongKey},
		{"missing audit password", auditName, audit, staticKeys{}, crypto.ErrMissingKey},
		{"bad padding", auditName, edit(audit, func(b []byte) { b[len(b)-20] ^= 1 }), keys, crypto.ErrCorrupt},
		{"truncated audit log", auditName, audit[:len(audit)-5], keys, crypto.ErrCorrupt},
		{"audit header only", auditName, audit[:16], keys, crypto.ErrCorrupt},
		{"corrupt gzip", auditName, badGzAudit.Bytes(), keys, crypto.ErrCorrupt},
		{"garbage named .enc", auditName, garbage, keys, crypto.ErrCorrupt},
		{"garbage behind Salted__", auditName, append([]byte("Salted__"), garbage...), keys, crypto.ErrWrongKey},
		{"garbage behind binlog magic", "binlog.000001", append([]byte{0xfd, 'b', 'i', 'n', 1}, garbage...), keys, crypto.ErrCorrupt},
		{"garbage named .log.gz", "audit.log.gz", garbage, keys, crypto.ErrCorrupt},
		{"gzip cut short", "audit.20240101T000000.log.gz", gz[:len(gz)/2], keys, crypto.ErrCorrupt},
		{"active gzip cut short", "audit.log.gz", gz[:len(gz)/2], keys, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := openBytes(t, c.file, c.data, c.keys, crypto.Options{})
			if err == nil {
				_, err = io.ReadAll(io.NewSectionReader(r, 0, 1<<62))
			}
			if !errors.Is(err, c.want) || c.want == nil && err != nil {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if c.want == nil {
				return // the active log: served up to its last complete block
			}
			if len(err.Error()) < len(c.want.Error())+10 {
				t.Fatalf("message %q says too little", err)
			}
		})
	}
}

// Random garbage without any magic is just a file: passed through.
func TestGarbagePassesThrough(t *testing.T) {
	garbage := make([]byte, 1000)
	crand.Read(garbage)
	garbage[0] = 'x'
	r, err := openBytes(t, "something.bin", garbage, nil, crypto.Options{})
	if err != nil || r.Kind != crypto.KindPlain || !bytes.Equal(readAll(t, r), garbage) {
		t.Fatalf("kind %v, err %v", r.Kind, err)
	}
}

func TestStatus(t *testing.T) {
	for err, want := range map[error]string{nil: "ok", crypto.ErrWrongKey: "wrong key", crypto.ErrMissingKey: "missing key",
		crypto.ErrCorrupt: "corrupt", crypto.ErrUnsupported: "unsupported", io.ErrUnexpectedEOF: "error"} {
		if got := crypto.Status(err); got != want {
			t.Errorf("Status(%v) = %q, want %q", err, got, want)
		}
	}
}

// failingSource is a source whose reads of bytes at or past from fail as a disk would.
type failingSource struct {
	data []byte
	from int64
}

func (f failingSource) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.from {
		n := copy(p, f.data[off:max(off, min(f.from, int64(len(f.data))))])
		return n, syscall.EIO
	}
	return bytes.NewReader(f.data).ReadAt(p, off)
}

// A source that cannot be read is an I/O error, whatever the file's kind and wherever the
// failure: never "corrupt" or "wrong key", which would send the user looking for damage or
// another key.
func TestIOErrorsAreNotDamage(t *testing.T) {
	mariadbKey := mustHex("16a214fa018c33bdd843b099440735651572949af5a5d02ec70bccf6b16d9f15")
	keys := staticKeys{binlogKeyID: binlogMaster, auditKeyID: []byte(auditSecret), "1": mariadbKey}
	plainAudit := []byte(strings.Repeat("<AUDIT_RECORD NAME=\"Query\"/>\n", 4000))
	files := map[string][]byte{
		"binlog.000001":                   encryptedBinlog(t),
		auditName:                         encryptAudit(t, plainAudit, true),
		"audit.log.20231231T235959-1.enc": encryptAudit(t, plainAudit, false),
		"audit.20240101T000000.log.gz":    run(t, plainAudit, nil, "gzip", "-c"),
		"mariadb-bin.000001":              readFile(t, fixture(t, "mariadb-10.11-encrypted", "aes_cbc", "mariadb-bin.000001")),
	}
	for name, data := range files {
		for _, from := range []int64{0, 10, 600, int64(len(data)) / 2, int64(len(data)) - 1} {
			if from >= int64(len(data)) {
				continue
			}
			src := failingSource{data, from}
			r, err := crypto.Open(src, int64(len(data)), name, keys, crypto.Options{})
			if err == nil {
				_, err = io.Copy(io.Discard, io.NewSectionReader(r, 0, 1<<40))
			}
			if !errors.Is(err, syscall.EIO) || errors.Is(err, crypto.ErrCorrupt) || errors.Is(err, crypto.ErrWrongKey) {
				t.Errorf("%s failing from byte %d: %v (%s); want EIO, not damage", name, from, err, crypto.Status(err))
			} else if crypto.Status(err) != "I/O error" {
				t.Errorf("%s failing from byte %d: status %q", name, from, crypto.Status(err))
			}
		}
	}
}

// A missing key's error keeps the key source's typed error for errors.As.
func TestMissingKeyKeepsTheSourceError(t *testing.T) {
	_, err := crypto.Open(bytes.NewReader(encryptedBinlog(t)), int64(len(encryptedBinlog(t))), "binlog.000001", staticKeys{}, crypto.Options{})
	var notFound *keysrc.NotFoundError
	if !errors.Is(err, crypto.ErrMissingKey) || !errors.As(err, &notFound) || notFound.ID != binlogKeyID {
		t.Fatalf("missing key: %v; want ErrMissingKey wrapping a *keysrc.NotFoundError for %q", err, binlogKeyID)
	}
}

// A 123-byte binlog whose one event claims a length of 1 GiB is checked without holding the
// event: before, verify allocated the claimed length for each such file.
func TestHostileEventLengthAllocatesNothing(t *testing.T) {
	file := append([]byte{0xfe, 'b', 'i', 'n'}, make([]byte, 119)...)
	binary.LittleEndian.PutUint32(file[4+9:], 1<<30) // event length
	file[4+4] = 2                                    // a Query event
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 4 {
		if _, err := crypto.Open(bytes.NewReader(file), int64(len(file)), "binlog.000001", nil, crypto.Options{}); err != nil {
			t.Fatal(err)
		}
		events, err := crypto.CheckPlainBinlog(bytes.NewReader(file))
		if !errors.Is(err, crypto.ErrCorrupt) {
			t.Fatalf("%d events, %v; want the event reported cut short", events, err)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
		t.Fatalf("checking four 123-byte files allocated %d MiB", grew>>20)
	}
}

// A MariaDB Start_encryption event whose length field claims 4 GB: before, Open allocated
// that much for the binlog's start, and a fuzzing worker ran out of memory.
func TestMariaDBStartLengthBounded(t *testing.T) {
	file := readFile(t, fixture(t, "mariadb-10.11-encrypted", "aes_cbc", "mariadb-bin.000001"))
	fdeEnd := 4 + int(binary.LittleEndian.Uint32(file[4+9:]))
	binary.LittleEndian.PutUint32(file[fdeEnd+9:], 0xfffffff0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := crypto.Open(bytes.NewReader(file), int64(len(file)), "mariadb-bin.000001", staticKeys{"1": []byte("0123456789abcdef")}, crypto.Options{})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, crypto.ErrCorrupt) || after.TotalAlloc-before.TotalAlloc > 64<<20 {
		t.Fatalf("%v, %d MiB allocated", err, (after.TotalAlloc-before.TotalAlloc)>>20)
	}
}
