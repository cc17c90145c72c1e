package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// A key command that takes 2 s and knows none of six audit passwords, under listings: a file
// whose key is already fetched opens while those look-ups run, and a second listing asks the
// command nothing (each unknown ID is asked once per retry interval). Before, the command ran
// under one lock: every `ls -l` took 24 s and the open of the cached key's file waited 13 s.
func TestSlowKeyCommandUnderListings(t *testing.T) {
	d := makeLogDir(t)
	unknown := map[string]bool{}
	for i := 2; i <= 7; i++ {
		var audit bytes.Buffer
		sample.AuditLog(&audit, sample.AuditXML, 10<<10, uint64(i), true)
		id := fmt.Sprintf("20240101T00000%d-%d", i, i)
		name := fmt.Sprintf("audit.2024010%dT000000.log.gz.%s.enc", i, id)
		d.add(t, name, audit.Bytes(), func(w *bytes.Buffer) {
			aw, _ := crypto.NewAuditWriter(w, crypto.AuditPassword{Password: []byte("unknown-pw")}, true)
			aw.Write(audit.Bytes())
			aw.Close()
		})
		unknown["audit_log-"+id] = true
	}
	var binlog bytes.Buffer
	sample.Binlog(&binlog, 20<<10, 2, "binlog.000003")
	d.add(t, "binlog.000002", binlog.Bytes(), func(w *bytes.Buffer) { // under the same master key
		bw, _ := crypto.NewBinlogWriter(w, "MySQLReplicationKey_demo_1", d.master)
		bw.Write(binlog.Bytes())
	})
	calls := filepath.Join(t.TempDir(), "calls")
	script := filepath.Join(t.TempDir(), "fetch-key")
	os.WriteFile(script, []byte(`#!/bin/sh
id=${MYSQLLOGFS_KEY_ID-$1}
echo "start $id" >> `+calls+`
case "$id" in
  MySQLReplicationKey_demo_1) printf '%s' '`+string(d.master)+`';;
  audit_log-20240101T000000-1) printf audit-pw;;
  *) sleep 2; echo "end $id" >> `+calls+`; exit 1;;
esac
`), 0o755)
	m := mount(t, d.dir, "--key-command", script)
	if got, err := os.ReadFile(m.path("binlog.000001")); err != nil || !bytes.Equal(got, d.plain["binlog.000001"]) {
		t.Fatalf("binlog.000001: %v", err)
	}
	count := func(prefix string) int {
		log, _ := os.ReadFile(calls)
		n := 0
		for id := range unknown {
			n += strings.Count(string(log), prefix+" "+id+"\n")
		}
		return n
	}
	start := time.Now()
	list := exec.Command("ls", "-l", m.dir)
	list.Stdout = &bytes.Buffer{}
	if err := list.Start(); err != nil {
		t.Fatal(err)
	}
	listed := make(chan time.Duration)
	go func() { list.Wait(); listed <- time.Since(start) }()
	waitFor(t, "a look-up of an unknown audit password", func() bool { return count("start") > 0 })
	catStart := time.Now()
	got := runOK(t, "cat", m.path("binlog.000002")) // a first open, of a key fetched already
	catTook := time.Since(catStart)
	if !bytes.Equal(got, d.plain["binlog.000002"]) {
		t.Fatal("cat binlog.000002: wrong bytes")
	}
	if ended := count("end"); ended == len(unknown) {
		t.Errorf("the open of a file with a fetched key waited for the slow look-ups (all %d had ended)", ended)
	}
	firstList := <-listed
	secondStart := time.Now()
	runOK(t, "ls", "-l", m.dir)
	secondList := time.Since(secondStart)
	for id := range unknown {
		log, _ := os.ReadFile(calls)
		if n := strings.Count(string(log), "start "+id+"\n"); n != 1 {
			t.Errorf("the command was asked for %s %d times, want once within the retry interval", id, n)
		}
	}
	t.Logf("first ls -l %s, cat of the cached key's file %s, second ls -l %s",
		firstList.Round(time.Millisecond), catTook.Round(time.Millisecond), secondList.Round(time.Millisecond))
}
