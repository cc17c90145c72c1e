package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/fs"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:      "demo",
		Usage:     "make sample encrypted logs and a keyring, mount them, and show the plaintext",
		ArgsUsage: "[MOUNTPOINT]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "exit", Usage: "unmount and exit after showing, instead of waiting for Ctrl-C"},
		},
		Action: runDemo,
	}
}

const demoServerUUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"

func runDemo(c *cli.Context) error {
	work, err := os.MkdirTemp("", "mysqllogfs-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	source, keyring := filepath.Join(work, "logs"), filepath.Join(work, "mysql-keyring", "component_keyring_file")
	if err := makeDemoLogs(source, keyring); err != nil {
		return err
	}
	mountpoint := c.Args().First()
	if mountpoint == "" {
		mountpoint = filepath.Join(work, "plaintext")
		os.Mkdir(mountpoint, 0o700)
	}
	keys, err := keysrc.OpenKeyring(keyring, nil)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	server, err := fs.Mount(source, mountpoint, fs.Options{Keys: keys, Log: log}, false)
	if err != nil {
		return err
	}
	defer server.Unmount()

	fmt.Printf("Encrypted MySQL logs in %s (keyring %s):\n\n", source, keyring)
	shell("ls", "-l", source)
	fmt.Printf("\nThe same directory through mysqllogfs, mounted at %s:\n\n", mountpoint)
	shell("ls", "-l", mountpoint)
	audit := filepath.Join(mountpoint, "audit.20240102T000000.log")
	fmt.Printf("\nFirst lines of %s (MySQL Enterprise Audit, gzip + AES-256-CBC):\n\n", audit)
	shell("head", "-n", "16", audit)
	percona := filepath.Join(mountpoint, "audit_filter.20240102T000000.log")
	fmt.Printf("\nFirst record of %s (Percona JSON, PBKDF2 password):\n\n", percona)
	shell("head", "-n", "2", percona)
	binlog := filepath.Join(mountpoint, "binlog.000001")
	fmt.Printf("\nFirst events of %s (AES-256-CTR, decoded from the plaintext view):\n\n", binlog)
	if err := printEvents(binlog, 8); err != nil {
		return err
	}
	if c.Bool("exit") {
		return nil
	}
	fmt.Printf("\nAlso try: grep -c '<AUDIT_RECORD>' %s; mysqlbinlog %s\n", audit, binlog)
	fmt.Printf("\nMounted until Ctrl-C.\n")
	<-signals
	return nil
}

// makeDemoLogs writes a log directory as a server with binlog encryption and encrypted,
// compressed audit logs would leave it, and the keyring that opens it.
func makeDemoLogs(source, keyring string) error {
	if err := os.MkdirAll(source, 0o750); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(keyring), 0o700); err != nil {
		return err
	}
	master := make([]byte, 32)
	rand.Read(master)
	binlogKey := "MySQLReplicationKey_" + demoServerUUID + "_1"
	keys := []keysrc.Key{
		{ID: binlogKey, Type: "AES", Value: master},
		{ID: "audit_log-20240101T000000-1", Type: "SECRET", Value: []byte(rand.Text())},
		{ID: "audit_log-20240101T000000-2", Owner: "audit_log", Type: "SECRET",
			Value: []byte(`{"password":"` + rand.Text() + `","salt":"","iterations":1000}`)},
	}
	if err := os.WriteFile(keyring, keysrc.EncodeComponentKeyring(keys), 0o600); err != nil {
		return err
	}
	for i, name := range []string{"binlog.000001", "binlog.000002"} {
		err := writeEncrypted(filepath.Join(source, name), func(w io.Writer) error {
			enc, err := crypto.NewBinlogWriter(w, binlogKey, master)
			if err != nil {
				return err
			}
			return sample.Binlog(enc, 256<<10, uint64(i), fmt.Sprintf("binlog.%06d", i+2))
		})
		if err != nil {
			return err
		}
	}
	os.WriteFile(filepath.Join(source, "binlog.index"), []byte("./binlog.000001\n./binlog.000002\n"), 0o640)
	audits := []struct {
		name     string
		key      keysrc.Key
		format   sample.AuditFormat
		compress bool
	}{
		{"audit.20240102T000000.log.gz.20240101T000000-1.enc", keys[1], sample.AuditXML, true},
		{"audit.20240103T000000.log.20240101T000000-1.enc", keys[1], sample.AuditXML, false},
		{"audit_filter.20240102T000000.log.gz.20240101T000000-2.enc", keys[2], sample.AuditJSON, true},
	}
	for i, a := range audits {
		err := writeEncrypted(filepath.Join(source, a.name), func(w io.Writer) error {
			enc, err := crypto.NewAuditWriter(w, crypto.ParseAuditPassword(a.key.Value), a.compress)
			if err != nil {
				return err
			}
			if err := sample.AuditLog(enc, a.format, 512<<10, uint64(i), true); err != nil {
				return err
			}
			return enc.Close()
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func writeEncrypted(path string, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := write(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func shell(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Run()
}

var eventNames = map[byte]string{2: "Query", 4: "Rotate", 15: "Format_description", 16: "Xid", 33: "Gtid", 35: "Previous_gtids"}

// printEvents lists a plain binlog's first events from their headers, as a quick look.
func printEvents(path string, n int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	magic := make([]byte, len(sample.BinlogMagic))
	if _, err := io.ReadFull(f, magic); err != nil || !bytes.Equal(magic, sample.BinlogMagic) {
		return fmt.Errorf("%s does not start with the binlog magic", path)
	}
	fmt.Printf("  %-8s %-20s %-12s %s\n", "offset", "event", "end_log_pos", "")
	walk := crypto.NewEventWalker(f, int64(len(magic)))
	for ; n > 0; n-- {
		e, err := walk.Next()
		if err != nil {
			break
		}
		event, err := walk.Bytes()
		if err != nil {
			break
		}
		detail := ""
		switch e.Type {
		case 2: // Query: the statement follows the fixed part and the schema name
			body := event[19 : len(event)-4]
			detail = string(body[13+int(body[8])+1:])
		case 15:
			detail = "server " + string(bytes.TrimRight(event[21:71], "\x00"))
		}
		fmt.Printf("  %-8d %-20s %-12d %s\n", e.Pos, eventNames[e.Type], e.EndPos, detail)
	}
	return nil
}
