package tests

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// liveMariaDB is a throwaway MariaDB server: unix socket only, its own data directory,
// binlogs encrypted with AES-CTR under an encrypted key file, CRC32 checksums.
type liveMariaDB struct {
	dir, socket, binlogs, keys, filekey string
}

func startMariaDB(t *testing.T, serverFlags ...string) *liveMariaDB {
	t.Helper()
	mariadbd := requireProgram(t, "mariadbd")
	install := requireProgram(t, "mariadb-install-db")
	requireProgram(t, "mariadb")
	if os.Geteuid() != 0 {
		t.Skip("the throwaway server runs as root here")
	}
	m := &liveMariaDB{dir: t.TempDir()}
	m.socket, m.binlogs = filepath.Join(m.dir, "sock"), filepath.Join(m.dir, "binlogs")
	m.keys, m.filekey = filepath.Join(m.dir, "keys.enc"), filepath.Join(m.dir, "filekey")
	os.Mkdir(m.binlogs, 0o750)
	key1, key2, filekey := make([]byte, 32), make([]byte, 16), make([]byte, 20)
	rand.Read(key1)
	rand.Read(key2)
	rand.Read(filekey)
	os.WriteFile(m.filekey, []byte(hex.EncodeToString(filekey)), 0o600)
	plainKeys := filepath.Join(m.dir, "keys.txt")
	os.WriteFile(plainKeys, []byte(fmt.Sprintf("# test keys\n1;%x\n2;%x\n", key1, key2)), 0o600)
	runOK(t, "openssl", "enc", "-aes-256-cbc", "-md", "sha1", "-pass", "file:"+m.filekey, "-in", plainKeys, "-out", m.keys)
	os.Remove(plainKeys)
	runOK(t, install, "--no-defaults", "--datadir="+filepath.Join(m.dir, "data"), "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db")
	pidFile := filepath.Join(m.dir, "pid")
	server := exec.Command(mariadbd, "--no-defaults", "--datadir="+filepath.Join(m.dir, "data"),
		"--socket="+m.socket, "--pid-file="+pidFile, "--skip-networking", "--user=root",
		"--log-bin="+filepath.Join(m.binlogs, "mariadb-bin"), "--binlog-checksum=CRC32",
		"--plugin-load-add=file_key_management", "--file-key-management-filename="+m.keys,
		"--file-key-management-filekey=FILE:"+m.filekey, "--file-key-management-encryption-algorithm=aes_ctr",
		"--encrypt-binlog=ON", "--log-error="+filepath.Join(m.dir, "error.log"), "--innodb-buffer-pool-size=16M")
	server.Args = append(server.Args, serverFlags...)
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.stop(t, pidFile, server) })
	for deadline := time.Now().Add(60 * time.Second); exec.Command("mariadb", "--socket="+m.socket, "-uroot", "-e", "select 1").Run() != nil; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(m.dir, "error.log"))
			t.Fatalf("the server did not start:\n%s", log)
		}
	}
	return m
}

// stop ends the server by the PID it wrote, and waits for it.
func (m *liveMariaDB) stop(t *testing.T, pidFile string, server *exec.Cmd) {
	b, _ := os.ReadFile(pidFile)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() { server.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		server.Process.Kill()
		<-done
	}
}

func (m *liveMariaDB) sql(t *testing.T, statements string) {
	t.Helper()
	runOK(t, "mariadb", "--socket="+m.socket, "-uroot", "--default-character-set=utf8mb4", "-e", statements)
}

// A live MariaDB server's encrypted binlogs, mounted while it runs: mariadb-binlog reads the
// view, the active binlog grows as more DML comes, and nothing in the files is plaintext.
func TestLiveMariaDBServer(t *testing.T) {
	srv := startMariaDB(t)
	srv.sql(t, `CREATE DATABASE live; CREATE TABLE live.t (id INT PRIMARY KEY AUTO_INCREMENT, v MEDIUMTEXT) ENGINE=InnoDB;
		INSERT INTO live.t (v) VALUES ('live-marker-ONE');
		SET SESSION binlog_format=ROW; INSERT INTO live.t (v) VALUES (CONCAT('big-row-marker-TWO', REPEAT('z', 40000)));
		SET SESSION binlog_format=STATEMENT; INSERT INTO live.t (v) VALUES ('statement-marker-THREE');`)
	m := mount(t, srv.binlogs, "--mariadb-keys", srv.keys, "--mariadb-keys-secret-file", srv.filekey)
	mariadbBinlog := requireProgram(t, "mariadb-binlog")
	view := func() string {
		return string(runOK(t, mariadbBinlog, "--base64-output=decode-rows", "-vv", m.path("mariadb-bin.000001")))
	}
	out := view()
	for _, marker := range []string{"live-marker-ONE", "big-row-marker-TWO", "statement-marker-THREE", "Write_rows"} {
		if !strings.Contains(out, marker) {
			t.Errorf("mariadb-binlog on the view lacks %s", marker)
		}
	}
	// More DML while mounted: the active binlog grows and the view follows.
	srv.sql(t, "SET SESSION binlog_format=ROW; INSERT INTO live.t (v) VALUES ('grown-marker-FOUR'); UPDATE live.t SET v='updated-marker-FIVE' WHERE id=1;")
	waitFor(t, "the new events in the view", func() bool {
		out = view()
		return strings.Contains(out, "grown-marker-FOUR") && strings.Contains(out, "updated-marker-FIVE")
	})
	raw, _ := os.ReadFile(filepath.Join(srv.binlogs, "mariadb-bin.000001"))
	if bytes.Contains(raw, []byte("marker")) {
		t.Fatal("the binlog file holds plaintext: encryption is not on")
	}
	if excerpt := strings.Index(out, "grown-marker-FOUR"); excerpt > 0 {
		t.Logf("mariadb-binlog on the live view:\n%s", out[max(0, excerpt-600):min(len(out), excerpt+200)])
	}
}
