package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/mysqllogfs/mysqllogfs/fs"
)

// repeats is how many times each throughput row runs each side, reporting the medians and
// the median of the rounds' ratios: this machine's timings vary by tens of percent from run
// to run.
const repeats = 16

// inTurn runs each side repeats times, each going first in as many rounds as the others,
// and returns each side's runs. Order matters here: this VM hands freed memory back to its
// host, and a run that comes right after another side freed its page cache finds that memory
// still mapped, so it would favour whichever side always came second.
func inTurn[T any](sides ...func() T) [][]T { return inTurnN(repeats, sides...) }

// inTurnN is inTurn with n rounds, for rows whose rounds take long.
func inTurnN[T any](n int, sides ...func() T) [][]T {
	runs := make([][]T, len(sides))
	for i := range n {
		for k := range sides {
			side := (i + k) % len(sides)
			runs[side] = append(runs[side], sides[side]())
		}
	}
	return runs
}

// alternate runs both sides in turn and returns each side's times, round by round.
func alternate(ours, base func() time.Duration) ([]time.Duration, []time.Duration) {
	runs := inTurn(ours, base)
	return runs[0], runs[1]
}

type row struct {
	id  string
	run func(data)
}

var rows = []row{
	{"C1", catBinlog},
	{"C2", catAudit},
	{"P1", mountSequentialBinlog},
	{"P2", mountRandomBinlog},
	{"P3", mountSequentialAudit},
	{"P4", mountRandomAudit},
	{"P5", mountListMany},
	{"P6", mountMemory},
	{"A1", vectorAESEndToEnd},
	{"I1", ownInflaterEndToEnd},
	{"X1", pathologicalShapes},
	{"E1", eventsOfBinlog},
	{"E2", eventsOfAudit},
	{"E3", eventsListMany},
}

// build is a mysqllogfs binary and the environment it runs in: the rows A1-A4 and I1-I2 set
// the hand-written vector AES and inflater against the library code they replace.
type build struct {
	bin string
	env []string
}

// ours is the build measured; cipherOnly turns vector AES off (crypto/cipher everywhere);
// klauspostInflate decodes with klauspost/compress's inflater. Set in main.
var ours, cipherOnly, klauspostInflate build

// catTime times `mysqllogfs cat` of path by b.
func (b build) catTime(path string) time.Duration {
	env := strings.Join(b.env, " ")
	return timed(fmt.Sprintf("%s %s cat --keyring %s %s >/dev/null", env, b.bin, filepath.Join(*dir, "keyring"), path))
}

// C1: `mysqllogfs cat` of the 1 GiB binlog next to openssl decrypting the same ciphertext.
func catBinlog(d data) {
	defer holdInMemory(d.binlogEnc, d.binlogCiphertext)()
	size := fileSize(d.binlogPlain)
	key, _ := os.ReadFile(d.binlogKey)
	kv := strings.Fields(string(key))
	// openssl needs the key on its command line; this one is a throwaway made for the bench.
	openssl := []string{"openssl", "enc", "-d", "-aes-256-ctr", "-K", kv[0], "-iv", kv[1], "-in", d.binlogCiphertext}
	ours, base := alternate(func() time.Duration {
		return timed(fmt.Sprintf("%s cat --keyring %s %s >/dev/null", bin, d.keyring, d.binlogEnc))
	}, func() time.Duration {
		return timed(strings.Join(openssl, " ") + " >/dev/null")
	})
	report("C1", "`cat` 1 GiB encrypted binlog", throughput(size, median(ours)), "openssl aes-256-ctr: "+throughput(size, median(base)), pairedRatio(base, ours), "")
	report("C1m", "peak RSS of that `cat`", peakRSSOf(bin, "cat", "--keyring", d.keyring, d.binlogEnc), "openssl: "+peakRSSOf(openssl...), "", "")
}

// C2: `mysqllogfs cat` of the audit log of 1 GiB plaintext next to `openssl enc -d | gzip -dc`.
func catAudit(d data) {
	src := filepath.Join(d.auditDir, d.auditName)
	defer holdInMemory(src)()
	ours, base := alternate(func() time.Duration {
		return timed(fmt.Sprintf("%s cat --keyring %s %s >/dev/null", bin, d.keyring, src))
	}, func() time.Duration { return opensslGunzip(d, src).wall })
	report("C2", "`cat` of a `.gz.<pwd_id>.enc` audit log, 1 GiB plaintext", throughput(d.auditPlainSize, median(ours)), "openssl \\| gzip -dc: "+throughput(d.auditPlainSize, median(base)), pairedRatio(base, ours), "")
	report("C2m", "peak RSS of that `cat`", peakRSSOf(bin, "cat", "--keyring", d.keyring, src), "", "", "")
}

// mount starts a mount of src (ours, or the go-fuse loopback baseline) and returns its
// mountpoint, its PID and how to end it. Ours remembers proven sizes in the bench's own size
// cache, as a mount does across remounts.
func mount(src string, loopback bool) (string, int, func()) {
	if loopback {
		self, _ := os.Executable()
		return mountCommand(exec.Command(self, "loopback", src, ""))
	}
	return mountBy(ours, src, filepath.Join(*dir, "size-cache"))
}

// mountBy mounts src with build b, remembering proven sizes in sizeCache ("": for the mount
// only, as a first mount ever).
func mountBy(b build, src, sizeCache string, flags ...string) (string, int, func()) {
	args := append([]string{"mount", "--foreground", "--keyring", filepath.Join(*dir, "keyring")}, flags...)
	if sizeCache == "" {
		args = append(args, "--no-size-cache")
	} else {
		args = append(args, "--size-cache", sizeCache)
	}
	cmd := exec.Command(b.bin, append(args, src, "")...)
	cmd.Env = append(os.Environ(), b.env...)
	return mountCommand(cmd)
}

// mountCommand runs cmd, whose last argument is the mountpoint to come, until it has mounted.
func mountCommand(cmd *exec.Cmd) (string, int, func()) {
	mnt, err := os.MkdirTemp("", "mysqllogfs-bench-mnt-")
	check(err)
	cmd.Args[len(cmd.Args)-1] = mnt
	cmd.Stderr = os.Stderr
	check(cmd.Start())
	for !mounted(mnt) {
		time.Sleep(10 * time.Millisecond)
	}
	return mnt, cmd.Process.Pid, func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		os.Remove(mnt)
	}
}

func mounted(dir string) bool {
	b, _ := os.ReadFile("/proc/self/mounts")
	return strings.Contains(string(b), " "+dir+" fuse")
}

// readAll opens a file and reads it sequentially in 1 MiB requests, and returns the time
// taken, the open included (where a first mount proves a compressed log's size).
func readAll(path string) (time.Duration, int64) {
	start := time.Now()
	f, err := os.Open(path)
	check(err)
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := f.Read(buf)
		n += int64(k)
		if err != nil {
			break
		}
	}
	return time.Since(start), n
}

// P1: sequential read of the encrypted binlog through the mount, next to its plaintext through
// a plain go-fuse loopback mount with the same request sizes. P1p reads that plaintext
// through mysqllogfs, which passes a plain file through on the same read path: what the mount
// costs without the decryption.
func mountSequentialBinlog(d data) {
	defer holdInMemory(d.binlogEnc, d.binlogPlain)()
	n := fileSize(d.binlogPlain)
	runs := inTurn(func() usage { return readMounted(filepath.Dir(d.binlogEnc), "binlog.000001", false) },
		func() usage { return readMounted(filepath.Dir(d.binlogPlain), "binlog.000001", true) },
		func() usage { return readMounted(filepath.Dir(d.binlogPlain), "binlog.000001", false) })
	o, b, p := medianUsage(runs[0]), medianUsage(runs[1]), medianUsage(runs[2])
	report("P1", "sequential read, 1 GiB encrypted binlog, through the mount", throughput(n, o.wall), "loopback: "+throughput(n, b.wall), pairedRatio(walls(runs[1]), walls(runs[0])), ">= 0.90x")
	reportCPU("P1c", n, o, b)
	report("P1p", "its plaintext through mysqllogfs (passed through: no decryption)", throughput(n, p.wall), "loopback: "+throughput(n, b.wall), pairedRatio(walls(runs[1]), walls(runs[2])), "")
}

// usage is what one sequential read through a mount cost: its wall time, and the CPU time of
// the mount's process and of the reading thread.
type usage struct{ wall, mount, reader time.Duration }

func (u usage) cpu() time.Duration { return u.mount + u.reader }

func walls(us []usage) []time.Duration {
	ws := make([]time.Duration, len(us))
	for i, u := range us {
		ws[i] = u.wall
	}
	return ws
}

// medianUsage is the run with the median wall time.
func medianUsage(us []usage) usage {
	return medianBy(us, func(u usage) time.Duration { return u.wall })
}

// reportCPU shows where a mount row's time goes, and the best ratio ours could reach on this
// machine: a read cannot take less wall time than its CPU time spread over every core.
func reportCPU(id string, n int64, ours, base usage) {
	perGiB := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()*GiB/float64(n)) }
	describe := func(u usage) string {
		if u.mount == 0 {
			return perGiB(u.cpu()) + " s"
		}
		return fmt.Sprintf("%s s (mount %s + reader %s)", perGiB(u.cpu()), perGiB(u.mount), perGiB(u.reader))
	}
	floor := ours.cpu().Seconds() / float64(runtime.NumCPU())
	report(id, "CPU per GiB of that read", describe(ours), describe(base),
		fmt.Sprintf("ceiling %.2fx", base.wall.Seconds()/floor), fmt.Sprintf("(%d cores)", runtime.NumCPU()))
}

// warmBytes is more memory than a sequential row's read puts in the page cache (1 GiB).
const warmBytes = 3 * GiB / 2

// readMounted mounts dir afresh (an empty page cache), reads name through it and unmounts.
func readMounted(dir, name string, loopback bool) usage {
	mnt, pid, stop := mount(dir, loopback)
	defer stop()
	return readThrough(mnt, pid, name, map[bool]string{true: "loopback", false: "mysqllogfs"}[loopback])
}

// readThrough reads name through the mount at mnt, served by process pid.
func readThrough(mnt string, pid int, name, side string) usage {
	touchFreshMemory(warmBytes)
	runtime.LockOSThread() // the reader's CPU time is this thread's
	defer runtime.UnlockOSThread()
	mount0, reader0 := processCPU(pid), threadCPU()
	t, n := readAll(filepath.Join(mnt, name))
	u := usage{t, processCPU(pid) - mount0, threadCPU() - reader0}
	fmt.Fprintf(os.Stderr, "  %s %s: %s, mount CPU %v\n", side, name, throughput(n, t), u.mount)
	return u
}

// processCPU is the user and system time of a process, all its threads.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var utime, stime int64
	fmt.Sscan(fields[11], &utime) // fields 14 and 15 of proc(5), counted after the command name
	fmt.Sscan(fields[12], &stime)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// threadCPU is the calling thread's user and system time.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	check(syscall.Getrusage(1, &ru)) // RUSAGE_THREAD
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// opensslGunzip is the by-hand way: openssl enc -d piped into gzip -dc. Its CPU time is the
// pipeline's.
func opensslGunzip(d data, src string) usage {
	touchFreshMemory(warmBytes)
	before := childrenCPU()
	t := timed(fmt.Sprintf("openssl enc -d -aes-256-cbc -md sha256 -pass file:%s -in %s 2>/dev/null | gzip -dc >/dev/null", d.password, src))
	return usage{wall: t, reader: childrenCPU() - before}
}

// childrenCPU is the user and system time of every child process waited for so far.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// randomReads times count reads of size bytes at random offsets and returns the median.
func randomReads(path string, count, size int, seed uint64) time.Duration {
	f, err := os.Open(path)
	check(err)
	defer f.Close()
	info, _ := f.Stat()
	rng := rand.New(rand.NewPCG(seed, 1))
	buf := make([]byte, size)
	times := make([]time.Duration, count)
	for i := range times {
		off := rng.Int64N(info.Size() - int64(size))
		start := time.Now()
		if _, err := f.ReadAt(buf, off); err != nil {
			check(err)
		}
		times[i] = time.Since(start)
	}
	return median(times)
}

// P2: 10,000 random 4 KiB reads in the binlog, median latency, both mounts.
func mountRandomBinlog(d data) {
	defer holdInMemory(d.binlogEnc, d.binlogPlain)()
	reads := func(dir string, loopback bool) time.Duration {
		mnt, _, stop := mount(dir, loopback)
		defer stop()
		return randomReads(filepath.Join(mnt, "binlog.000001"), 10000, 4096, 1)
	}
	ours, base := alternate(func() time.Duration { return reads(filepath.Dir(d.binlogEnc), false) },
		func() time.Duration { return reads(filepath.Dir(d.binlogPlain), true) })
	report("P2", "10,000 random 4 KiB reads in that binlog, median", median(ours).String(), "loopback: "+median(base).String(), pairedRatio(ours, base), "<= 1.5x")
}

// P3: sequential read of the audit log through the mount, next to openssl | gzip -dc: with its
// size remembered from an earlier mount, and (P3f) in a first mount ever, where the open
// proves the size by decoding the log once before the read decodes it again.
func mountSequentialAudit(d data) {
	defer holdInMemory(filepath.Join(d.auditDir, d.auditName))()
	const name = "audit.20240102T000000.log"
	n := d.auditPlainSize
	mnt, _, stop := mount(d.auditDir, false) // proves the size once, for the size cache
	f, err := os.Open(filepath.Join(mnt, name))
	check(err)
	f.Close()
	stop()
	firstEver := func() usage {
		mnt, pid, stop := mountBy(ours, d.auditDir, "")
		defer stop()
		return readThrough(mnt, pid, name, "mysqllogfs, first mount")
	}
	runs := inTurn(func() usage { return readMounted(d.auditDir, name, false) },
		func() usage { return opensslGunzip(d, filepath.Join(d.auditDir, d.auditName)) }, firstEver)
	o, b, f1 := medianUsage(runs[0]), medianUsage(runs[1]), medianUsage(runs[2])
	report("P3", "sequential read, audit log of 1 GiB plaintext, through the mount (size remembered)", throughput(n, o.wall), "openssl \\| gzip -dc: "+throughput(n, b.wall), pairedRatio(walls(runs[1]), walls(runs[0])), ">= 2.5x")
	reportCPU("P3c", n, o, b)
	report("P3f", "the same read in a first mount ever (size proven at open)", throughput(n, f1.wall), "openssl \\| gzip -dc: "+throughput(n, b.wall), pairedRatio(walls(runs[1]), walls(runs[2])), "")
}

// P4: 64 KiB reads at random offsets of the audit log after a first full read.
func mountRandomAudit(d data) {
	defer holdInMemory(filepath.Join(d.auditDir, d.auditName))()
	mnt, _, stop := mount(d.auditDir, false)
	defer stop()
	path := filepath.Join(mnt, "audit.20240102T000000.log")
	first, _ := readAll(path)
	dropCaches() // the kernel's page cache would answer from memory otherwise
	ours := randomReads(path, 200, 64<<10, 2)
	again, _ := readAll(path)
	report("P4", "64 KiB read at a random offset of that audit log, after a first full read, median", ours.String(),
		fmt.Sprintf("reading from the start: %s (first read %s)", again.Round(time.Millisecond), first.Round(time.Millisecond)), "", "<= 20 ms")
}

// P5: the first `ls -l` after mounting 1,000 compressed, encrypted audit logs of 1 MiB, in a
// first mount ever; P5r in a remount, once a mount has proven and remembered their sizes.
func mountListMany(d data) {
	sizeCache, err := os.MkdirTemp(*dir, "size-cache-")
	check(err)
	defer os.RemoveAll(sizeCache)
	first, exact := listMany(d, sizeCache)
	_, _, stop := mountBy(ours, d.manyDir, sizeCache)
	for start := time.Now(); rememberedSizes(sizeCache) < 1000 && time.Since(start) < time.Minute; {
		time.Sleep(100 * time.Millisecond) // the background pass proves them
	}
	stop()
	again, exactAgain := listMany(d, sizeCache)
	verdict := map[bool]string{true: "sizes exact", false: "SIZES WRONG"}
	report("P5", "first `ls -l` of 1,000 `.gz.<pwd_id>.enc` logs of 1 MiB, first mount ever", first.Round(time.Millisecond).String(), "", verdict[exact], "<= 1 s")
	report("P5r", "the same in a remount (sizes remembered)", again.Round(time.Millisecond).String(), "", verdict[exactAgain], "")
}

// rememberedSizes counts the entries of a size cache.
func rememberedSizes(sizeCache string) int {
	b, _ := os.ReadFile(filepath.Join(sizeCache, "sizes-v2"))
	return strings.Count(string(b), "\n")
}

// listMany times the first `ls -l` of a fresh mount of the 1,000 logs, and checks the sizes.
func listMany(d data, sizeCache string) (time.Duration, bool) {
	dropCaches()
	mnt, _, stop := mountBy(ours, d.manyDir, sizeCache)
	defer stop()
	took := timed("ls -l " + mnt + " >/dev/null")
	ok := true
	for i := range 1000 {
		info, err := os.Stat(filepath.Join(mnt, strings.TrimSuffix(auditName(i), ".gz.20240101T000000-1.enc")))
		if err != nil || info.Size() < 1<<20 || info.Size() > 1<<20+4096 {
			ok = false
		}
	}
	return took, ok
}

// P6: peak RSS of the mount while 16 readers stream 16 files of 256 MiB, then one a 4 GiB file.
func mountMemory(d data) {
	mnt, pid, stop := mount(d.readersDir, false)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readAll(filepath.Join(mnt, strings.TrimSuffix(auditName(i), ".gz.20240101T000000-1.enc")))
		}()
	}
	wg.Wait()
	rss16 := peakRSS(pid)
	stop()
	mnt, pid, stop = mount(d.bigDir, false)
	_, n := readAll(filepath.Join(mnt, strings.TrimSuffix(auditName(0), ".gz.20240101T000000-1.enc")))
	rssBig := peakRSS(pid)
	stop()
	report("P6", "peak RSS of the mount: 16 readers x 256 MiB / one reader of a 4 GiB file", mib(rss16)+" / "+mib(rssBig),
		fmt.Sprintf("(read %s from the big file)", mib(n)), "", "<= 64 MiB")
}

// peakRSS is a process's high-water mark of resident memory.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	check(err)
	var kb int64
	fmt.Sscan(afterKey(string(b), "VmHWM:"), &kb)
	return kb * 1024
}

// runLoopback serves src at mnt with go-fuse's loopback filesystem: the baseline of P1 and
// P2, with the same mount options as mysqllogfs (reads from user space, no passthrough, no
// splice).
func runLoopback(src, mnt string) {
	root, err := gofs.NewLoopbackRoot(src)
	check(err)
	opts := fs.MountOptions(src, false)
	opts.MountOptions.DirectMount = true
	opts.MountOptions.DisabledCapabilities = fuse.CAP_PASSTHROUGH // reads served from user space
	// go-fuse would try to splice each reply from the file, but it will not grow its pipe past
	// fs.pipe-max-size (1 MiB here), which a 1 MiB reply and its header exceed: every attempt
	// fails, logs a line and falls back to pread and write. The baseline goes there directly.
	server, err := gofs.Mount(mnt, root, opts)
	check(err)
	check(fs.SetReadahead(mnt, fs.ReadaheadWindow)) // the same requests, as many at once, as mysqllogfs
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-signals; server.Unmount() }()
	server.Wait()
}

func afterKey(s, key string) string {
	if i := strings.Index(s, key); i >= 0 {
		return s[i+len(key):]
	}
	return ""
}
