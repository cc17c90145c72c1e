package crypto_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/tests"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

const (
	auditName   = "audit.20240102T000000.log.gz.20231231T235959-1.enc"
	activeName  = "audit.log.gz.20231231T235959-1.enc" // the log the server writes now
	auditKeyID  = "audit_log-20231231T235959-1"
	auditSecret = "s3cr3t-audit-password"
)

func auditPlaintext(t *testing.T, format sample.AuditFormat, size int64, seed uint64) []byte {
	var b bytes.Buffer
	if err := sample.AuditLog(&b, format, size, seed, true); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// run runs a real program with stdin and environment, and returns its stdout.
func run(t *testing.T, stdin []byte, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return out
}

func readAll(t *testing.T, r *crypto.Reader) []byte {
	t.Helper()
	got, err := io.ReadAll(io.NewSectionReader(r, 0, 1<<62))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Files made by the openssl and gzip commands, with both key derivations, decrypt to the
// original.
func TestAuditMadeByOpenSSL(t *testing.T) {
	for _, kdf := range []string{"bytestokey", "pbkdf2"} {
		for _, compress := range []bool{true, false} {
			for _, format := range []sample.AuditFormat{sample.AuditXML, sample.AuditJSON} {
				t.Run(fmt.Sprintf("%s/gzip=%v/%s", kdf, compress, format), func(t *testing.T) {
					plain := auditPlaintext(t, format, 300<<10, 7)
					data, name := plain, "audit.20240102T000000.log.20231231T235959-1.enc"
					if compress {
						data, name = run(t, plain, nil, "gzip", "-c"), auditName
					}
					args := []string{"enc", "-aes-256-cbc", "-md", "sha256", "-pass", "env:AUDIT_PW"}
					keyValue := []byte(auditSecret)
					if kdf == "pbkdf2" {
						args = append(args, "-pbkdf2", "-iter", "1000")
						keyValue = []byte(`{"password":"` + auditSecret + `","salt":"00","iterations":1000}`)
					}
					enc := run(t, data, []string{"AUDIT_PW=" + auditSecret}, "openssl", args...)
					r, err := openBytes(t, name, enc, staticKeys{auditKeyID: keyValue}, crypto.Options{})
					if err != nil {
						t.Fatal(err)
					}
					if r.PlainName != "audit.20240102T000000.log" || r.Compressed != compress {
						t.Fatalf("plain name %q, compressed %v", r.PlainName, r.Compressed)
					}
					if got := readAll(t, r); !bytes.Equal(got, plain) {
						t.Fatalf("plaintext differs: %d bytes, want %d", len(got), len(plain))
					}
					if r.Size() != int64(len(plain)) || !r.SizeExact() {
						t.Fatalf("size %d (exact %v), want %d", r.Size(), r.SizeExact(), len(plain))
					}
				})
			}
		}
	}
}

// Files from the project's writer decrypt with `openssl enc -d` and `gzip -dc`, and the
// project's reader agrees.
func TestAuditWriterReadByOpenSSL(t *testing.T) {
	for _, iter := range []int{0, 10000} {
		t.Run(fmt.Sprint("iterations=", iter), func(t *testing.T) {
			plain := auditPlaintext(t, sample.AuditXML, 500<<10, 3)
			pw := crypto.AuditPassword{Password: []byte(auditSecret), Iterations: iter}
			var enc bytes.Buffer
			w, err := crypto.NewAuditWriter(&enc, pw, true)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(plain)
			w.Close()
			args := []string{"enc", "-d", "-aes-256-cbc", "-md", "sha256", "-pass", "env:AUDIT_PW"}
			if iter > 0 {
				args = append(args, "-pbkdf2", "-iter", fmt.Sprint(iter))
			}
			gz := run(t, enc.Bytes(), []string{"AUDIT_PW=" + auditSecret}, "openssl", args...)
			if got := run(t, gz, nil, "gzip", "-dc"); !bytes.Equal(got, plain) {
				t.Fatal("openssl | gzip -dc gives other bytes")
			}
			value := []byte(auditSecret)
			if iter > 0 {
				value = []byte(fmt.Sprintf(`{"password":"%s","iterations":%d}`, auditSecret, iter))
			}
			r, err := openBytes(t, auditName, enc.Bytes(), staticKeys{auditKeyID: value}, crypto.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, r); !bytes.Equal(got, plain) {
				t.Fatal("reader and openssl disagree")
			}
		})
	}
}

func encryptAudit(t testing.TB, plain []byte, compress bool) []byte {
	var enc bytes.Buffer
	w, err := crypto.NewAuditWriter(&enc, crypto.AuditPassword{Password: []byte(auditSecret)}, compress)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	w.Close()
	return enc.Bytes()
}

// Random reads from eight goroutines into a compressed, encrypted log of several MiB.
func TestAuditRandomAccess(t *testing.T) {
	plain := auditPlaintext(t, sample.AuditJSON, 6<<20, 11)
	for _, compress := range []bool{true, false} {
		r, err := openBytes(t, auditName, encryptAudit(t, plain, compress), staticKeys{auditKeyID: []byte(auditSecret)}, crypto.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(g), 5))
				buf := make([]byte, 200<<10)
				for range 60 {
					off := rng.Int64N(int64(len(plain)))
					n := 1 + rng.IntN(len(buf))
					got, _ := r.ReadAt(buf[:n], off)
					want := plain[off:min(int(off)+n, len(plain))]
					if !bytes.Equal(buf[:got], want) {
						t.Errorf("gzip=%v ReadAt(%d, %d): %d bytes differ", compress, n, off, got)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}

// A file the server reopened: several Salted__ containers, each with its own gzip member.
func TestAuditSeveralContainers(t *testing.T) {
	parts := [][]byte{
		auditPlaintext(t, sample.AuditXML, 100<<10, 1),
		auditPlaintext(t, sample.AuditXML, 37, 2),
		auditPlaintext(t, sample.AuditXML, 2<<20, 3),
	}
	for _, compress := range []bool{true, false} {
		var file []byte
		for _, p := range parts {
			file = append(file, encryptAudit(t, p, compress)...)
		}
		r, err := openBytes(t, auditName, file, staticKeys{auditKeyID: []byte(auditSecret)}, crypto.Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Join(parts, nil)
		if got := readAll(t, r); !bytes.Equal(got, want) {
			t.Fatalf("gzip=%v: %d bytes, want %d", compress, len(got), len(want))
		}
		if err := r.Measure(context.Background()); err != nil || r.Size() != int64(len(want)) {
			t.Fatalf("gzip=%v: size %d after measuring (%v), want %d", compress, r.Size(), err, len(want))
		}
	}
}

// An audit log the server is still writing: no final block, no gzip trailer.
func TestAuditUnfinished(t *testing.T) {
	plain := auditPlaintext(t, sample.AuditXML, 1<<20, 9)
	for _, compress := range []bool{true, false} {
		var enc bytes.Buffer
		w, _ := crypto.NewAuditWriter(&enc, crypto.AuditPassword{Password: []byte(auditSecret)}, compress)
		w.Write(plain) // never closed
		keys := staticKeys{auditKeyID: []byte(auditSecret)}
		if _, err := openBytes(t, auditName, enc.Bytes(), keys, crypto.Options{}); !errors.Is(err, crypto.ErrCorrupt) {
			t.Fatalf("gzip=%v: a rotated log without its end: %v, want ErrCorrupt", compress, err)
		}
		r, err := openBytes(t, activeName, enc.Bytes(), keys, crypto.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Unfinished() {
			t.Errorf("gzip=%v: the active log is not reported unfinished", compress)
		}
		got := readAll(t, r)
		if len(got) == 0 || !bytes.HasPrefix(plain, got) || int64(len(got)) != r.Size() {
			t.Fatalf("gzip=%v: read %d bytes (size %d), not a prefix of the %d written", compress, len(got), r.Size(), len(plain))
		}
	}
}

// Before 8.0.17 the suffix is a bare .enc and the key ID is "audit_log"; compression alone
// needs no key.
func TestAuditOtherNames(t *testing.T) {
	plain := auditPlaintext(t, sample.AuditXML, 10<<10, 4)
	r, err := openBytes(t, "audit.log.gz.enc", encryptAudit(t, plain, true), staticKeys{"audit_log": []byte(auditSecret)}, crypto.Options{})
	if err != nil || r.PlainName != "audit.log" || !bytes.Equal(readAll(t, r), plain) {
		t.Fatalf("bare .enc: %v", err)
	}
	gz := run(t, plain, nil, "gzip", "-c")
	r, err = openBytes(t, "audit.20240101T000000.log.gz", gz, nil, crypto.Options{})
	if err != nil || r.PlainName != "audit.20240101T000000.log" || !bytes.Equal(readAll(t, r), plain) {
		t.Fatalf(".gz: %v", err)
	}
}

// The trailer gives the size of the last member only; reading to the end corrects it.
func TestGzipSizeCorrectedByFullRead(t *testing.T) {
	a, b := auditPlaintext(t, sample.AuditXML, 50<<10, 1), auditPlaintext(t, sample.AuditXML, 20<<10, 2)
	gz := append(run(t, a, nil, "gzip", "-c"), run(t, b, nil, "gzip", "-c")...)
	r, err := openBytes(t, "audit.20240101T000000.log.gz", gz, nil, crypto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.SizeExact() || r.Size() != int64(len(b)) {
		t.Fatalf("estimate %d (exact %v), want the last member's %d", r.Size(), r.SizeExact(), len(b))
	}
	if got := readAll(t, r); !bytes.Equal(got, append(a, b...)) {
		t.Fatal("plaintext differs")
	}
	if !r.SizeExact() || r.Size() != int64(len(a)+len(b)) {
		t.Fatalf("size %d after a full read", r.Size())
	}
}

func TestPlainName(t *testing.T) {
	for name, want := range map[string]string{
		"audit.20240102T000000.log.gz.20231231T235959-1.enc": "audit.20240102T000000.log",
		"audit.log.20190414T223342-2.enc":                    "audit.log",
		"audit_filter.20240102T000000-3.log.gz":              "audit_filter.20240102T000000-3.log",
		"audit.log.enc":                                      "audit.log",
		"audit.log.gz.enc":                                   "audit.log",
		"binlog.000042":                                      "binlog.000042",
		"binlog.index":                                       "binlog.index",
		"notes.txt.gz":                                       "notes.txt.gz",
	} {
		if got := crypto.PlainName(name); got != want {
			t.Errorf("PlainName(%q) = %q, want %q", name, got, want)
		}
	}
}

// Several sequential streams on one reader, as concurrent readers and the kernel's readahead
// make them: each must get its bytes while cursors decode ahead for the others.
func TestAuditConcurrentStreams(t *testing.T) {
	plain := auditPlaintext(t, sample.AuditXML, 8<<20, 13)
	r, err := openBytes(t, auditName, encryptAudit(t, plain, true), staticKeys{auditKeyID: []byte(auditSecret)}, crypto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g, chunk := range []int{4 << 10, 64 << 10, 1 << 20, 300 << 10} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, chunk)
			for off := g * len(plain) / 8; off < len(plain); off += chunk {
				n, err := r.ReadAt(buf, int64(off))
				want := plain[off:min(off+chunk, len(plain))]
				if !bytes.Equal(buf[:n], want) || (n < chunk && err == nil) {
					t.Errorf("stream %d at %d: %d bytes, %v", g, off, n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// An active audit log read, then read again after it grew: the second reader resumes from
// the first one's checkpoints and gives the same bytes as a fresh reader.
func TestAuditGrowingContinuesIndex(t *testing.T) {
	var enc bytes.Buffer
	w, _ := crypto.NewAuditWriter(&enc, crypto.AuditPassword{Password: []byte(auditSecret)}, true)
	first := auditPlaintext(t, sample.AuditXML, 4<<20, 41)
	w.Write(first)
	keys := staticKeys{auditKeyID: []byte(auditSecret)}
	opts := crypto.Options{}
	v1, err := openBytes(t, activeName, append([]byte(nil), enc.Bytes()...), keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(auditPlaintext(t, sample.AuditXML, 3<<20, 42))
	w.Close()
	opts.Previous = v1
	v2, err := openBytes(t, activeName, enc.Bytes(), keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := openBytes(t, activeName, enc.Bytes(), keys, crypto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := readAll(t, fresh)
	if got := readAll(t, v2); !bytes.Equal(got, want) || len(want) < 7<<20 || !bytes.HasPrefix(want, readAll(t, v1)) {
		t.Fatalf("grown reader: %d bytes, fresh %d", len(got), len(want))
	}
	buf := make([]byte, 1000)
	for _, off := range []int64{0, 1 << 20, 5 << 20, int64(len(want)) - 1000} {
		n, _ := v2.ReadAt(buf, off)
		if !bytes.Equal(buf[:n], want[off:off+int64(n)]) || n != 1000 {
			t.Fatalf("ReadAt at %d", off)
		}
	}
}

// Windows borrowed from an earlier index stay charged while a later index holds them, and are
// given back exactly once when the last holder closes.
func TestWindowBudgetBalances(t *testing.T) {
	plain := auditPlaintext(t, sample.AuditXML, 6<<20, 51)
	dir := t.TempDir()
	path := filepath.Join(dir, auditName)
	os.WriteFile(path, encryptAudit(t, plain, true), 0o600)
	keys := staticKeys{auditKeyID: []byte(auditSecret)}
	before := crypto.WindowBudgetUsed() // other tests' readers that are never closed
	var files []*crypto.File
	var prev *crypto.Reader
	for range 4 { // each reopen borrows the previous index, then the previous one is closed
		f, err := crypto.OpenFile(path, keys, crypto.Options{Previous: prev})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Measure(context.Background()); err != nil {
			t.Fatal(err)
		}
		files, prev = append(files, f), f.Reader
	}
	last := files[len(files)-1]
	if crypto.IndexWindowBytes(last.Reader) == 0 {
		t.Fatal("the readers hold no windows: the test does not exercise the budget")
	}
	for _, f := range files[:len(files)-1] {
		f.Close()
	}
	// The last reader holds windows its predecessors made: they stay charged while it lives.
	if charged, held := crypto.WindowBudgetUsed()-before, crypto.IndexWindowBytes(last.Reader); charged != held {
		t.Fatalf("%d bytes of windows charged while the open reader holds %d", charged, held)
	}
	last.Close()
	if used := crypto.WindowBudgetUsed(); used != before {
		t.Fatalf("%d bytes of window budget still charged after every reader closed", used-before)
	}
}

// A log rewritten in place with other content (cp over it: same inode, larger) is not the
// earlier reader's file grown: its index is not continued, and every byte is the new file's.
func TestRewrittenLogDoesNotContinueTheIndex(t *testing.T) {
	keys := staticKeys{auditKeyID: []byte(auditSecret)}
	first := encryptAudit(t, auditPlaintext(t, sample.AuditXML, 4<<20, 51), true)
	v1, err := openBytes(t, activeName, first, keys, crypto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, v1) // builds the index
	plain := auditPlaintext(t, sample.AuditXML, 6<<20, 52)
	second := encryptAudit(t, plain, true)
	v2, err := openBytes(t, activeName, second, keys, crypto.Options{Previous: v1})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for _, off := range []int64{3 << 20, 1<<20 + 5, 5 << 20} {
		if n, err := v2.ReadAt(buf, off); err != nil || !bytes.Equal(buf[:n], plain[off:off+int64(n)]) {
			t.Fatalf("read at %d of the rewritten log: %d bytes, %v; want its own plaintext", off, n, err)
		}
	}
}

// Containers of every length mixed: runs of tiny ones (the index keeps one entry per 64 KiB
// of them, and a layout of each run while its budget lasts), empty ones, and long ones
// between. Every byte reads back at any offset, in any order, and sequentially: with layouts,
// without any (each run is scanned again), and with the budget running out halfway. Closing
// the reader gives the budget back.
func TestAuditManyContainersOfMixedLengths(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var file, want []byte
	add := func(p []byte) {
		file = append(file, encryptAudit(t, p, false)...)
		want = append(want, p...)
	}
	add(auditPlaintext(t, sample.AuditXML, 1000, 1)) // the start must look like a log
	for len(file) < 3<<20 {
		switch k := rng.IntN(1000); {
		case k < 3:
			add(tests.RandomBytes(100<<10+rng.IntN(300<<10), rng.Uint64()))
		case k < 100:
			add(nil)
		default:
			add(tests.RandomBytes(1+rng.IntN(40), rng.Uint64()))
		}
	}
	before := crypto.LayoutBytes()
	for _, budget := range []int64{8 << 20, 0, 200 << 10} {
		restore := crypto.LimitLayouts(budget)
		f := writeTemp(t, auditName, file)
		r, err := crypto.OpenFile(f, staticKeys{auditKeyID: []byte(auditSecret)}, crypto.Options{})
		restore()
		if err != nil {
			t.Fatal(err)
		}
		if r.Size() != int64(len(want)) {
			t.Fatalf("budget %d: size %d, want %d", budget, r.Size(), len(want))
		}
		if got := readAll(t, r.Reader); !bytes.Equal(got, want) {
			t.Fatalf("budget %d: sequential read: %d bytes differ from the %d written", budget, len(got), len(want))
		}
		for range 1000 {
			off := rng.Int64N(int64(len(want)))
			tests.ReadAtChecked(t, r, want, off, 1+rng.IntN(200<<10))
		}
		r.Close()
		if used := crypto.LayoutBytes(); used != before {
			t.Fatalf("budget %d: %d bytes of layouts still held after Close", budget, used-before)
		}
	}
	// An open that fails after the scan (the rotated log's last block cut) gives them back too.
	if _, err := crypto.OpenFile(writeTemp(t, auditName, file[:len(file)-1]), staticKeys{auditKeyID: []byte(auditSecret)}, crypto.Options{}); !errors.Is(err, crypto.ErrCorrupt) {
		t.Fatalf("a rotated log without its last block: %v", err)
	}
	if used := crypto.LayoutBytes(); used != before {
		t.Fatalf("%d bytes of layouts held after a failed open", used-before)
	}
}

// writeTemp writes data to a file of that name in a temporary directory.
func writeTemp(t *testing.T, name string, data []byte) string {
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
