package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// The decoded view (issue 19). E1: `mysqllogfs events` of a 1 GiB binlog of row events against
// mariadb-binlog decoding the same rows; E2: `events` of the audit log of 1 GiB plaintext
// against `cat` of its byte view, so that decoding records costs no more than decompressing
// them. Four rounds a side: a round of E1 takes over half a minute.
const eventRounds = 4

func eventsOfBinlog(d data) {
	rows := filepath.Join(*dir, "rows", "binlog.000001")
	once(rows, func() {
		os.MkdirAll(filepath.Dir(rows), 0o700)
		f := create(rows)
		check(sample.RowBinlog(f, GiB, 1, "binlog.000002"))
		closeAll(f)
	})
	defer holdInMemory(rows)()
	size := fileSize(rows)
	mariadbBinlog := "mariadb-binlog --base64-output=decode-rows -vv " + rows + " >/dev/null"
	runs := inTurnN(eventRounds, func() time.Duration {
		return timed(fmt.Sprintf("%s events %s >/dev/null", bin, rows))
	}, func() time.Duration { return timed(mariadbBinlog) })
	ours, base := runs[0], runs[1]
	report("E1", "`events` of a 1 GiB binlog of row events", throughput(size, median(ours)),
		"mariadb-binlog -vv: "+throughput(size, median(base)), pairedRatio(base, ours), ">= 2x")
	report("E1m", "peak RSS of that `events`", peakRSSOf(bin, "events", rows), "", "", "<= 64 MiB")
}

// E2 compares with the baseline, `cat` of the byte view through the mount (mounted
// afresh each round, so that nothing comes from the page cache); E2c with the stricter one,
// `mysqllogfs cat`, which decrypts and inflates in one process without FUSE; E2v reads the
// .ndjson of the same log through the mount.
func eventsOfAudit(d data) {
	src := filepath.Join(d.auditDir, d.auditName)
	defer holdInMemory(src)()
	const name = "audit.20240102T000000.log"
	mountedCat := func(file string, flags ...string) time.Duration {
		mnt, _, stop := mountBy(ours, d.auditDir, filepath.Join(*dir, "size-cache"), flags...)
		defer stop()
		return timed("cat " + filepath.Join(mnt, file) + " >/dev/null")
	}
	mountedCat(name+".ndjson", "--events") // proves and remembers both sizes
	runs := inTurnN(eventRounds, func() time.Duration {
		return timed(fmt.Sprintf("%s events --keyring %s %s >/dev/null", bin, d.keyring, src))
	}, func() time.Duration {
		return mountedCat(name)
	}, func() time.Duration {
		return timed(fmt.Sprintf("%s cat --keyring %s %s >/dev/null", bin, d.keyring, src))
	}, func() time.Duration {
		return mountedCat(name+".ndjson", "--events")
	})
	ours, view, cat, ndjson := runs[0], runs[1], runs[2], runs[3]
	report("E2", "`events` of a `.gz.<pwd_id>.enc` XML audit log, 1 GiB plaintext", throughput(d.auditPlainSize, median(ours)),
		"`cat` of the byte view: "+throughput(d.auditPlainSize, median(view)), pairedRatio(view, ours), ">= 1x")
	report("E2c", "the same `events`", throughput(d.auditPlainSize, median(ours)),
		"`mysqllogfs cat`: "+throughput(d.auditPlainSize, median(cat)), pairedRatio(cat, ours), "")
	report("E2v", "`cat` of its `.ndjson` through the mount (plaintext MB/s)", throughput(d.auditPlainSize, median(ndjson)),
		"`cat` of the byte view: "+throughput(d.auditPlainSize, median(view)), pairedRatio(view, ndjson), "")
}

// E3: the first `ls -l` of a mount with --events over the 1,000 logs of P5, which decodes
// every log's events for their sizes, against `events` of those files; and again in a remount
// that remembers the sizes, against P5's bound.
func eventsListMany(d data) {
	sizeCache, err := os.MkdirTemp(*dir, "size-cache-")
	check(err)
	defer os.RemoveAll(sizeCache)
	paths, _ := filepath.Glob(filepath.Join(d.manyDir, "audit.*"))
	dropCaches()
	decode := timed(fmt.Sprintf("%s events --keyring %s %s >/dev/null", bin, d.keyring, strings.Join(paths, " ")))
	dropCaches()
	mnt, _, stop := mountBy(ours, d.manyDir, sizeCache, "--events")
	first := timed("ls -l " + mnt + " >/dev/null")
	for start := time.Now(); rememberedSizes(sizeCache) < 2*len(paths) && time.Since(start) < 5*time.Minute; {
		time.Sleep(100 * time.Millisecond) // the background pass proves what ls did not
	}
	stop()
	dropCaches()
	mnt, _, stop = mountBy(ours, d.manyDir, sizeCache, "--events")
	again := timed("ls -l " + mnt + " >/dev/null")
	stop()
	report("E3", "first `ls -l` of the 1,000 logs of P5 with --events, nothing remembered", first.Round(time.Millisecond).String(),
		"`events` of them: "+decode.Round(time.Millisecond).String(), fmt.Sprintf("%.2fx", float64(first)/float64(decode)), "<= 1x")
	report("E3r", "the same in a remount (sizes remembered)", again.Round(time.Millisecond).String(), "", "", "<= 1 s")
}
