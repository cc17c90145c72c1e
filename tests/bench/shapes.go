package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// Pathological shapes (issue 18): work in proportion to the file, memory within the mount's
// bound. X1-X2: a compressed log of 2,000,000 empty gzip members then one record, against
// gzip -dc; X3-X4: an encrypted audit log of 300,000 Salted__ containers of a 2-byte gzip,
// which openssl enc -d cannot read past its first container.

// emptyMember is the smallest gzip member.
var emptyMember = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}

func pathologicalShapes(d data) {
	members := filepath.Join(*dir, "shapes", "members", "audit.20240101T000000.log.gz")
	containers := filepath.Join(*dir, "shapes", "containers", "audit.20240102T000000.log.gz.20240101T000000-1.enc")
	once(members, func() {
		os.MkdirAll(filepath.Dir(members), 0o700)
		var record bytes.Buffer
		w, _ := crypto.NewGzipWriter(nopCloser{&record})
		w.Write([]byte("<AUDIT_RECORD NAME=\"Query\"/>\n"))
		w.Close()
		check(os.WriteFile(members, append(bytes.Repeat(emptyMember, 2_000_000), record.Bytes()...), 0o600))
	})
	once(containers, func() {
		keys, err := keysrc.OpenKeyring(d.keyring, nil)
		check(err)
		pw, err := keys.Lookup(auditKey, keysrc.AnyOwner)
		check(err)
		var member, file bytes.Buffer
		w, _ := crypto.NewGzipWriter(nopCloser{&member})
		w.Write([]byte("x\n"))
		w.Close()
		for range 300_000 {
			aw, err := crypto.NewAuditWriter(&file, crypto.ParseAuditPassword(pw.Value), false)
			check(err)
			aw.Write(member.Bytes())
			aw.Close()
		}
		os.MkdirAll(filepath.Dir(containers), 0o700)
		check(os.WriteFile(containers, file.Bytes(), 0o600))
	})
	defer holdInMemory(members, containers)()

	ours, gzip := alternate(func() time.Duration { return ours.catTime(members) },
		func() time.Duration { return timed("gzip -dc " + members + " >/dev/null") })
	report("X1", "`cat` of 2,000,000 empty gzip members and a record (40 MB)", median(ours).Round(time.Millisecond).String(),
		"gzip -dc: "+median(gzip).Round(time.Millisecond).String(), pairedRatio(ours, gzip), "<= 2x")
	report("X2", "peak RSS of the mount reading it / first `ls -l` and `cat` through a fresh mount", shapeThroughMount(members), "", "", "<= 64 MiB")
	containersCat := timed(fmt.Sprintf("%s cat --keyring %s %s >/dev/null", bin, d.keyring, containers))
	report("X3", "`cat` of 300,000 Salted__ containers (14.4 MB), peak RSS", containersCat.Round(time.Millisecond).String()+", "+peakRSSOf(bin, "cat", "--keyring", d.keyring, containers), "", "", "")
	report("X4", "peak RSS of the mount reading it / first `ls -l` and `cat` through a fresh mount", shapeThroughMount(containers), "", "", "<= 64 MiB")
}

// shapeThroughMount reads a shape through a first mount ever of its directory: the listing,
// then the file.
func shapeThroughMount(source string) string {
	mnt, pid, stop := mountBy(ours, filepath.Dir(source), "")
	defer stop()
	list := timed("ls -l " + mnt + " >/dev/null")
	name := crypto.PlainName(filepath.Base(source))
	took, _ := readAll(filepath.Join(mnt, name))
	return fmt.Sprintf("%s / %s and %s", mib(peakRSS(pid)), list.Round(time.Millisecond), took.Round(time.Millisecond))
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }
