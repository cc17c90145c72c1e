package main

import (
	"path/filepath"
	"strings"
	"time"
)

// The project keeps hand-written vector AES (crypto/aesmode) and a deflate decoder
// (crypto/inflate) only while they pay end to end. These rows run the same build with and
// without them, side by side: GODEBUG turns vector AES off (crypto/cipher everywhere), and a
// build with -tags klauspost_inflate decodes with klauspost/compress, resuming from the same
// checkpoints.

// A1-A4: vector AES against crypto/cipher, through cat and the mount.
func vectorAESEndToEnd(d data) {
	defer holdInMemory(d.binlogEnc, filepath.Join(d.auditDir, d.auditName), d.plainAudit)()
	catRow := func(id, what, path string, size int64) {
		vector, cipher := alternate(func() time.Duration { return ours.catTime(path) },
			func() time.Duration { return cipherOnly.catTime(path) })
		report(id, what, throughput(size, median(vector)), "crypto/cipher: "+throughput(size, median(cipher)), pairedRatio(cipher, vector), "")
	}
	catRow("A1", "`cat` 1 GiB encrypted binlog (CTR), vector AES", d.binlogEnc, fileSize(d.binlogPlain))
	runs := inTurn(func() usage { return readBy(ours, filepath.Dir(d.binlogEnc), "binlog.000001") },
		func() usage { return readBy(cipherOnly, filepath.Dir(d.binlogEnc), "binlog.000001") })
	n := fileSize(d.binlogPlain)
	report("A2", "sequential read of that binlog through the mount, vector AES", throughput(n, medianUsage(runs[0]).wall),
		"crypto/cipher: "+throughput(n, medianUsage(runs[1]).wall), pairedRatio(walls(runs[1]), walls(runs[0])), "")
	catRow("A3", "`cat` of an uncompressed `.log.<pwd_id>.enc` audit log, 1 GiB (CBC), vector AES", d.plainAudit, d.plainAuditSize)
	catRow("A4", "`cat` of the `.gz.<pwd_id>.enc` audit log (CBC on compressed bytes), vector AES", filepath.Join(d.auditDir, d.auditName), d.auditPlainSize)
}

// I1-I2: the own inflater against klauspost/compress's, through cat and the mount.
func ownInflaterEndToEnd(d data) {
	src := filepath.Join(d.auditDir, d.auditName)
	defer holdInMemory(src)()
	own, klauspost := alternate(func() time.Duration { return ours.catTime(src) },
		func() time.Duration { return klauspostInflate.catTime(src) })
	n := d.auditPlainSize
	report("I1", "`cat` of the `.gz.<pwd_id>.enc` audit log, own inflater", throughput(n, median(own)), "klauspost/compress: "+throughput(n, median(klauspost)), pairedRatio(klauspost, own), "")
	name := strings.TrimSuffix(d.auditName, ".gz.20240101T000000-1.enc")
	runs := inTurn(func() usage { return readBy(ours, d.auditDir, name) },
		func() usage { return readBy(klauspostInflate, d.auditDir, name) })
	report("I2", "sequential read of that log through the mount (size remembered), own inflater", throughput(n, medianUsage(runs[0]).wall),
		"klauspost/compress: "+throughput(n, medianUsage(runs[1]).wall), pairedRatio(walls(runs[1]), walls(runs[0])), "")
}

// readBy reads name through a fresh mount of dir by build b, sizes remembered.
func readBy(b build, src, name string) usage {
	mnt, pid, stop := mountBy(b, src, filepath.Join(*dir, "size-cache"))
	defer stop()
	return readThrough(mnt, pid, name, b.bin+" "+strings.Join(b.env, " "))
}
