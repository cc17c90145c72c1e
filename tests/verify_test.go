package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mysqllogfs/mysqllogfs/crypto"
)

// A good directory verifies, and the manifest's hashes agree with sha256sum and with the
// expected plaintext.
func TestVerifyManifest(t *testing.T) {
	d := makeViewDir(t)
	manifest := filepath.Join(t.TempDir(), "manifest.json")
	r := mysqllogfs(t, nil, "verify", "--keyring", d.keyring, "--manifest", manifest, d.dir)
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	var records []struct {
		Source          string `json:"source"`
		Size            int64  `json:"size"`
		SourceSHA256    string `json:"source_sha256"`
		KeyID           string `json:"key_id"`
		PlaintextSize   int64  `json:"plaintext_size"`
		PlaintextSHA256 string `json:"plaintext_sha256"`
		Status          string `json:"status"`
	}
	b, _ := os.ReadFile(manifest)
	if err := json.Unmarshal(b, &records); err != nil {
		t.Fatal(err)
	}
	if len(records) != len(d.view) {
		t.Fatalf("%d records for %d files", len(records), len(d.view))
	}
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(runOK(t, "sh", "-c", "cd "+d.dir+" && find . -type f | sort | xargs sha256sum"))), "\n") {
		f := strings.Fields(line)
		sums[filepath.Join(d.dir, f[1])] = f[0]
	}
	for _, rec := range records {
		if rec.Status != "ok" || rec.SourceSHA256 != sums[rec.Source] {
			t.Errorf("%s: status %q, source sha256 %s, sha256sum %s", rec.Source, rec.Status, rec.SourceSHA256, sums[rec.Source])
		}
		rel, _ := filepath.Rel(d.dir, rec.Source)
		want, ok := d.plain[rel]
		if !ok {
			want = d.view[rel] // a plain file: its own bytes
		}
		if sum := sha256.Sum256(want); ok && (rec.PlaintextSHA256 != hex.EncodeToString(sum[:]) || rec.PlaintextSize != int64(len(want))) {
			t.Errorf("%s: plaintext %d bytes %s, want %d %x", rel, rec.PlaintextSize, rec.PlaintextSHA256, len(want), sum)
		}
	}
}

// One byte flipped in the middle of an encrypted binlog: verify names the file and the event.
func TestVerifyFindsFlippedByte(t *testing.T) {
	d := makeLogDir(t)
	path := filepath.Join(d.dir, "binlog.000001")
	enc, _ := os.ReadFile(path)
	flip := len(enc) / 2
	enc[flip] ^= 0x20
	os.WriteFile(path, enc, 0o640)

	// The event holding plaintext offset flip-512 (CTR: the flip lands on the same byte).
	plain := d.plain["binlog.000001"]
	offsets := EventOffsets(plain)
	i := sort.SearchInts(offsets, flip-512+1) - 1
	r := mysqllogfs(t, nil, "verify", "--keyring", d.keyring, d.dir)
	want := fmt.Sprintf("event %d (type %d) at offset %d", i+1, plain[offsets[i]+4], offsets[i])
	out := string(r.stdout)
	if r.code == 0 || !strings.Contains(out, "FAIL "+path) || !strings.Contains(out, want) {
		t.Fatalf("exit %d, want a failure naming %s and %q:\n%s", r.code, path, want, out)
	}
	if !strings.Contains(out, "ok   "+filepath.Join(d.dir, "audit.20240102T000000.log.gz.20240101T000000-1.enc")) {
		t.Fatalf("the undamaged audit log is not reported ok:\n%s", out)
	}
}

// A gzip member whose CRC32 does not match its data, inside a valid encrypted container,
// fails verification although every block decrypts and inflates.
func TestVerifyFindsDamagedAuditLog(t *testing.T) {
	d := makeLogDir(t)
	plain := d.plain["audit.20240102T000000.log.gz.20240101T000000-1.enc"]
	cmd := exec.Command("gzip", "-c")
	cmd.Stdin = bytes.NewReader(plain)
	gz, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	gz[len(gz)-8] ^= 0xff // the trailer's CRC32
	name := "audit.20240105T000000.log.gz.20240101T000000-1.enc"
	d.add(t, name, plain, func(w *bytes.Buffer) {
		aw, _ := crypto.NewAuditWriter(w, crypto.AuditPassword{Password: []byte("audit-pw")}, false)
		aw.Write(gz)
		aw.Close()
	})
	r := mysqllogfs(t, nil, "verify", "--keyring", d.keyring, filepath.Join(d.dir, name))
	if out := string(r.stdout); r.code == 0 || !strings.Contains(out, "FAIL") || !strings.Contains(out, "CRC32 mismatch") {
		t.Fatalf("exit %d:\n%s", r.code, out)
	}
}

// A binlog the server appends to while verify reads it. verify hashes the source from the
// bytes it decrypts, through one open, and fails a file that changed meanwhile; before, it
// hashed the source through one open and decrypted through another, and its manifest said
// "ok" for two hashes of different bytes.
func TestVerifyFileChangingUnderIt(t *testing.T) {
	d := makeLogDir(t)
	plain := make([]byte, 128<<20)
	fillPlain(plain, 5)
	copy(plain, []byte{0xfe, 'b', 'i', 'n'})
	path := filepath.Join(d.dir, "binlog.000007")
	src, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	enc, _ := crypto.NewBinlogWriter(src, "MySQLReplicationKey_demo_1", d.master)
	enc.Write(plain[:64<<20])
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for off := 64 << 20; off < len(plain); off += 64 << 10 {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				enc.Write(plain[off : off+64<<10])
			}
		}
	}()
	manifest := filepath.Join(t.TempDir(), "manifest.json")
	r := mysqllogfs(t, nil, "verify", "--keyring", d.keyring, "--manifest", manifest, path)
	close(stop)
	<-stopped
	if out := string(r.stdout); r.code == 0 || !strings.Contains(out, "changed while it was being verified") {
		t.Fatalf("exit %d, want a failure saying the file changed:\n%s%s", r.code, out, r.stderr)
	}
}
