package tests

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-mysql-org/go-mysql/replication"
)

// The real MariaDB 10.11 encrypted binlogs through the mount: mariadb-binlog decodes the view
// (which it cannot do with the files themselves), go-mysql parses it with checksums, and the
// markers of dml.sql appear.
func TestMariaDBThroughMount(t *testing.T) {
	fixtures := filepath.Join(Fixtures(t), "mariadb-10.11-encrypted")
	m := mount(t, filepath.Join(fixtures, "aes_cbc"), "--mariadb-keys", filepath.Join(fixtures, "keys", "keys.txt"))
	mariadb := requireProgram(t, "mariadb-binlog")
	out := runOK(t, mariadb, "--base64-output=decode-rows", "-vv", m.path("mariadb-bin.000001"), m.path("mariadb-bin.000002"), m.path("mariadb-bin.000003"))
	for _, marker := range []string{"secret-plaintext-marker-ALPHA", "updated-marker-BETA", "statement-marker-GAMMA", "'erin'"} {
		if !bytes.Contains(out, []byte(marker)) {
			t.Errorf("mariadb-binlog output lacks %s", marker)
		}
	}
	for _, name := range []string{"mariadb-bin.000001", "mariadb-bin.000002", "mariadb-bin.000003"} {
		p := replication.NewBinlogParser()
		p.SetVerifyChecksum(true)
		p.SetFlavor("mariadb")
		events := 0
		if err := p.ParseFile(m.path(name), 0, func(*replication.BinlogEvent) error { events++; return nil }); err != nil || events < 4 {
			t.Errorf("go-mysql on %s: %d events, %v", name, events, err)
		}
		src, _ := os.Stat(filepath.Join(fixtures, "aes_cbc", name))
		view, _ := os.Stat(m.path(name))
		if src.Size() != view.Size() {
			t.Errorf("%s: view %d bytes, file %d", name, view.Size(), src.Size())
		}
	}
}
