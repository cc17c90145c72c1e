package crypto_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
	"github.com/mysqllogfs/mysqllogfs/tests"
)

func fixture(t *testing.T, parts ...string) string {
	return filepath.Join(append([]string{tests.Fixtures(t)}, parts...)...)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtureKeyring(t *testing.T) keysrc.Source {
	src, err := keysrc.OpenKeyring(fixture(t, "mysql-8.0.22-encrypted", "keyring"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func openBytes(t *testing.T, name string, data []byte, keys keysrc.Source, opts crypto.Options) (*crypto.Reader, error) {
	t.Helper()
	return crypto.Open(bytes.NewReader(data), int64(len(data)), name, keys, opts)
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// The values the fixtures README derives, step by step.
func TestFixtureIntermediateValues(t *testing.T) {
	keys := fixtureKeyring(t)
	enc := readFile(t, fixture(t, "mysql-8.0.22-encrypted", "binlog.encrypted"))
	hdr, err := crypto.ParseBinlogHeader(enc[:512])
	if err != nil {
		t.Fatal(err)
	}
	if hdr.KeyID != "MySQLReplicationKey_cfe557b7-766c-11eb-afbf-3cfdfed34198_2" {
		t.Fatalf("key ID %q", hdr.KeyID)
	}
	master, err := keys.Lookup(hdr.KeyID, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex("4cbf40ee4756dbcc7fad5b7251afb5f8a7f980ae15d4566639ea6d3c257462b1"); !bytes.Equal(master.Value, want) {
		t.Fatalf("master key %x", master.Value)
	}
	password, err := hdr.FilePassword(master.Value)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex("0607e929848615eafebbaec2feffef1012a23568579a8dcce234186adbe17e80"); !bytes.Equal(password, want) {
		t.Fatalf("file password %x", password)
	}
	key, nonce := crypto.BinlogFileKey(password)
	if want := mustHex("fd3f4f1c07444a5136449552393fa96afe7d7d850dcccad6982c1bfae429fa2a"); !bytes.Equal(key, want) {
		t.Fatalf("file key %x", key)
	}
	ctr := crypto.CounterBlock(nonce, 0)
	if want := mustHex("923e7e9a7ec5ce9e0000000000000000"); !bytes.Equal(ctr[:], want) {
		t.Fatalf("counter block %x", ctr)
	}
	if ctr := crypto.CounterBlock(nonce, 40); ctr[15] != 2 {
		t.Fatalf("counter block for offset 40 is %x, want block number 2", ctr)
	}
}

// Every offset, every length from 1 to 64, against the server's plaintext.
func TestFixtureBinlogEveryOffset(t *testing.T) {
	enc := readFile(t, fixture(t, "mysql-8.0.22-encrypted", "binlog.encrypted"))
	want := readFile(t, fixture(t, "mysql-8.0.22-encrypted", "binlog.decrypted"))
	r, err := openBytes(t, "binlog.000001", enc, fixtureKeyring(t), crypto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != crypto.KindMySQLBinlog || r.PlainName != "binlog.000001" || r.Size() != int64(len(want)) {
		t.Fatalf("kind %s, name %s, size %d", r.Kind, r.PlainName, r.Size())
	}
	buf := make([]byte, 64)
	for off := 0; off < len(want); off++ {
		for n := 1; n <= 64; n++ {
			got, err := r.ReadAt(buf[:n], int64(off))
			end := min(off+n, len(want))
			if got != end-off || !bytes.Equal(buf[:got], want[off:end]) {
				t.Fatalf("ReadAt(%d, %d) = %d bytes %x, %v; want %x", n, off, got, buf[:got], err, want[off:end])
			}
			if end < off+n && err == nil {
				t.Fatalf("short ReadAt(%d, %d) without error", n, off)
			}
		}
	}
	if n, err := tests.ParseBinlog(bytes.NewReader(want)); err != nil || n != 7 {
		t.Fatalf("parsed %d events: %v", n, err)
	}
}

// Real MySQL 8 binlogs, encrypted into the MySQL format, come back byte for byte and parse.
func TestPlainBinlogsRoundTrip(t *testing.T) {
	master := bytes.Repeat([]byte{0x5a}, 32)
	keys := staticKeys{"MySQLReplicationKey_test_1": master}
	for _, path := range tests.PlainBinlogs(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			plain := readFile(t, path)
			var enc bytes.Buffer
			w, err := crypto.NewBinlogWriter(&enc, "MySQLReplicationKey_test_1", master)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(plain)
			if bytes.Contains(enc.Bytes(), plain[4:40]) {
				t.Fatal("ciphertext contains plaintext")
			}
			r, err := openBytes(t, filepath.Base(path), enc.Bytes(), keys, crypto.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, r.Size())
			if _, err := r.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatal("plaintext differs")
			}
			n, err := tests.ParseBinlog(bytes.NewReader(got))
			if err != nil || n < 3 {
				t.Fatalf("go-mysql parsed %d events: %v", n, err)
			}
			// Reads that start at each event boundary see the event.
			for _, off := range tests.EventOffsets(plain) {
				ev := make([]byte, 19)
				if _, err := r.ReadAt(ev, int64(off)); err != nil || !bytes.Equal(ev, plain[off:off+19]) {
					t.Fatalf("event header at %d: %v", off, err)
				}
			}
		})
	}
}

// staticKeys is a key source held in memory, for tests.
type staticKeys map[string][]byte

func (s staticKeys) Lookup(id, _ string) (keysrc.Key, error) {
	if v, ok := s[id]; ok {
		return keysrc.Key{ID: id, Value: v}, nil
	}
	return keysrc.Key{}, &keysrc.NotFoundError{ID: id, Where: "test keys"}
}
func (s staticKeys) List() ([]keysrc.Key, error) { return nil, keysrc.ErrCannotList }
func (s staticKeys) String() string              { return "test keys" }

// Reads of a binlog file of every size and alignment decrypt right; a file cut short while
// open gives an error, not a crash.
func TestBinlogFileReads(t *testing.T) {
	master := bytes.Repeat([]byte{0x5a}, 32)
	keys := staticKeys{"MySQLReplicationKey_test_1": master}
	plain := append([]byte{0xfe, 0x62, 0x69, 0x6e}, tests.RandomBytes(3<<20+999, 5)...)
	path := writeBinlog(t, t.TempDir(), plain, master)

	f, err := crypto.OpenFile(path, keys, crypto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 64<<10 + 3, 4096} {
		for off := int64(0); off < int64(len(plain)); off += int64(size) - 1 {
			tests.ReadAtChecked(t, f, plain, off, size)
		}
	}

	if err := os.Truncate(path, 1<<20); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 1<<20)
	if _, err := f.ReadAt(p, 2<<20); !errors.Is(err, crypto.ErrCorrupt) {
		t.Fatalf("read past the cut: %v, want ErrCorrupt", err)
	}
	if _, err := f.ReadAt(p[:512<<10], 0); err != nil || !bytes.Equal(p[:512<<10], plain[:512<<10]) {
		t.Fatalf("read before the cut: %v", err)
	}
}

// A closed binlog reader fails every later read. Before, its views were mapped again through
// the raw number of its closed descriptor: once another open reused that number, a read
// returned that file's bytes, decrypted into garbage, with no error.
func TestClosedBinlogNeverServesAnotherFile(t *testing.T) {
	master := bytes.Repeat([]byte{0x5a}, 32)
	keys := staticKeys{"MySQLReplicationKey_test_1": master}
	plain := append([]byte{0xfe, 0x62, 0x69, 0x6e}, tests.RandomBytes(8<<20, 7)...)
	dir := t.TempDir()
	path := writeBinlog(t, dir, plain, master)
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, tests.RandomBytes(9<<20, 8), 0o600); err != nil {
		t.Fatal(err)
	}

	f, err := crypto.OpenFile(path, keys, crypto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 1<<20)
	tests.ReadAtChecked(t, f, plain, 3<<20, len(p)) // maps a view
	f.Close()
	reuse, err := os.Open(other) // likely takes the closed descriptor's number
	if err != nil {
		t.Fatal(err)
	}
	defer reuse.Close()
	for _, off := range []int64{5 << 20, 0, 3 << 20} {
		if n, err := f.ReadAt(p, off); !errors.Is(err, crypto.ErrClosed) {
			t.Fatalf("read of a closed reader at %d: %d bytes, %v; want ErrClosed", off, n, err)
		}
	}
}

// writeBinlog writes plain encrypted under master (key ID MySQLReplicationKey_test_1) as
// dir/binlog.000001 and returns its path.
func writeBinlog(t *testing.T, dir string, plain, master []byte) string {
	t.Helper()
	path := filepath.Join(dir, "binlog.000001")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w, err := crypto.NewBinlogWriter(out, "MySQLReplicationKey_test_1", master)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	return path
}
