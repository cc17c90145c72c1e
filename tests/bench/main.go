// Command bench measures mysqllogfs against the baselines its issues name, side by side on
// the same machine in one run, and prints a table of figures and ratios:
//
//	go run ./tests/bench [-dir DIR] [-only C1,P1,...]
//
// It builds mysqllogfs, generates the data once into DIR (kept for later runs), mounts what it
// measures, and unmounts it. Run it as root (mounts without fusermount3, locks its sources in
// memory, drops page caches).
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

const (
	GiB      = 1 << 30
	MiB      = 1 << 20
	keyID    = "MySQLReplicationKey_bench_1"
	auditKey = "audit_log-20240101T000000-1"
)

var (
	dir  = flag.String("dir", filepath.Join(os.TempDir(), "mysqllogfs-bench"), "where the generated data is kept between runs")
	only = flag.String("only", "", "comma-separated rows to run (C1,C2,P1,...); all by default")
	bin  string
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == "loopback" {
		runLoopback(os.Args[2], os.Args[3])
		return
	}
	flag.Parse()
	check(os.MkdirAll(*dir, 0o700))
	bin = filepath.Join(*dir, "mysqllogfs")
	run("go", "build", "-o", bin, "./cmd/mysqllogfs")
	klauspost := filepath.Join(*dir, "mysqllogfs-klauspost-inflate")
	run("go", "build", "-tags", "klauspost_inflate", "-o", klauspost, "./cmd/mysqllogfs")
	ours = build{bin: bin}
	cipherOnly = build{bin: bin, env: []string{"GODEBUG=cpu.avx2=off,cpu.avx512bw=off"}}
	klauspostInflate = build{bin: klauspost}
	holdFreedMemory()
	defer restoreFreedMemory()
	d := generate()
	fmt.Printf("\n| # | what | mysqllogfs | baseline | ratio | target |\n|---|---|---|---|---|---|\n")
	for _, row := range rows {
		if *only == "" || strings.Contains(","+*only+",", ","+row.id+",") {
			row.run(d)
		}
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		restoreFreedMemory()
		os.Exit(1)
	}
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Run())
}

func report(id, what, ours, base, ratio, target string) {
	fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", id, what, ours, base, ratio, target)
}

// data is where each generated file is.
type data struct {
	keyring, password           string
	binlogPlain, binlogEnc      string // 1 GiB plain binlog and its encrypted form
	binlogCiphertext, binlogKey string // the encrypted form without its header, and key/IV for openssl
	auditDir, auditName         string // a directory with one audit log of 1 GiB plaintext
	auditPlainSize              int64
	manyDir                     string // 1,000 audit logs of 1 MiB plaintext
	readersDir                  string // 16 audit logs of 256 MiB plaintext
	bigDir                      string // one audit log of 4 GiB plaintext
	plainAudit                  string // an encrypted, uncompressed audit log of 1 GiB
	plainAuditSize              int64
}

func generate() data {
	d := data{keyring: filepath.Join(*dir, "keyring"), password: filepath.Join(*dir, "audit-password")}
	if _, err := os.Stat(d.keyring); err != nil {
		master := make([]byte, 32)
		rand.Read(master)
		keys := []keysrc.Key{{ID: keyID, Type: "AES", Value: master}, {ID: auditKey, Type: "SECRET", Value: []byte(rand.Text())}}
		check(os.WriteFile(d.keyring, keysrc.EncodeComponentKeyring(keys), 0o600))
		check(os.WriteFile(d.password, keys[1].Value, 0o600))
	}
	keys, err := keysrc.OpenKeyring(d.keyring, nil)
	check(err)
	master, _ := keys.Lookup(keyID, "")
	password, _ := keys.Lookup(auditKey, keysrc.AnyOwner)

	d.binlogPlain = filepath.Join(*dir, "plain", "binlog.000001")
	d.binlogEnc = filepath.Join(*dir, "binlog", "binlog.000001")
	d.binlogCiphertext = filepath.Join(*dir, "binlog.ciphertext")
	d.binlogKey = filepath.Join(*dir, "binlog.openssl-key")
	once(d.binlogEnc, func() {
		os.MkdirAll(filepath.Dir(d.binlogPlain), 0o700)
		plain := create(d.binlogPlain)
		enc := create(d.binlogEnc)
		w, err := crypto.NewBinlogWriter(enc, keyID, master.Value)
		check(err)
		check(sample.Binlog(io.MultiWriter(plain, w), GiB, 1, "binlog.000002"))
		closeAll(plain, enc)
		// openssl's input: the same ciphertext without the header, and the derived key and IV.
		src, _ := os.Open(d.binlogEnc)
		head := make([]byte, 512)
		io.ReadFull(src, head)
		hdr, err := crypto.ParseBinlogHeader(head)
		check(err)
		pw, err := hdr.FilePassword(master.Value)
		check(err)
		key, nonce := crypto.BinlogFileKey(pw)
		ctr := crypto.CounterBlock(nonce, 0)
		check(os.WriteFile(d.binlogKey, []byte(fmt.Sprintf("%x %x", key, ctr)), 0o600))
		ct := create(d.binlogCiphertext)
		io.Copy(ct, src)
		closeAll(ct, src)
	})
	pw := crypto.ParseAuditPassword(password.Value)
	d.auditDir, d.auditName = filepath.Join(*dir, "audit"), auditName(0)
	d.auditPlainSize = writeAudits(d.auditDir, 1, GiB, pw)
	d.manyDir = filepath.Join(*dir, "many")
	writeAudits(d.manyDir, 1000, MiB, pw)
	d.readersDir = filepath.Join(*dir, "readers")
	writeAudits(d.readersDir, 16, 256*MiB, pw)
	d.bigDir = filepath.Join(*dir, "big")
	writeAudits(d.bigDir, 1, 4*GiB, pw)
	d.plainAudit = filepath.Join(*dir, "uncompressed", "audit.20240102T000000.log.20240101T000000-1.enc")
	once(d.plainAudit, func() {
		f := create(d.plainAudit)
		w, err := crypto.NewAuditWriter(f, pw, false)
		check(err)
		check(sample.AuditLog(w, sample.AuditXML, GiB, 7, true))
		check(w.Close())
		closeAll(f)
	})
	d.plainAuditSize = fileSize(d.plainAudit) - 16 // the Salted__ header; the padding is at most a block
	return d
}

// writeAudits writes n compressed, encrypted audit logs of about size bytes of plaintext,
// and returns the plaintext size of the first (recorded when generated).
func writeAudits(dir string, n int, size int64, pw crypto.AuditPassword) int64 {
	done := filepath.Join(dir, ".done")
	once(done, func() {
		os.MkdirAll(dir, 0o700)
		var wg sync.WaitGroup
		sem := make(chan bool, 2)
		sizes := make([]int64, n)
		for i := range n {
			wg.Add(1)
			sem <- true
			go func() {
				defer func() { <-sem; wg.Done() }()
				f := create(filepath.Join(dir, auditName(i)))
				w, err := crypto.NewAuditWriter(f, pw, true)
				check(err)
				cw := &counter{w: w}
				check(sample.AuditLog(cw, sample.AuditXML, size, uint64(i), true))
				check(w.Close())
				closeAll(f)
				sizes[i] = cw.n
			}()
		}
		wg.Wait()
		check(os.WriteFile(done, []byte(fmt.Sprint(sizes[0])), 0o600))
	})
	b, err := os.ReadFile(done)
	check(err)
	var first int64
	fmt.Sscan(string(b), &first)
	return first
}

func auditName(i int) string {
	return fmt.Sprintf("audit.2024%04dT000000.log.gz.20240101T000000-1.enc", i+102)
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// once runs make when path does not exist yet.
func once(path string, make func()) {
	if _, err := os.Stat(path); err == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "generating %s\n", path)
	make()
}

func create(path string) *os.File {
	os.MkdirAll(filepath.Dir(path), 0o700)
	f, err := os.Create(path)
	check(err)
	return f
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		check(f.Close())
	}
}

// timed runs a shell pipeline and returns its wall time.
func timed(script string) time.Duration {
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stderr = os.Stderr
	start := time.Now()
	check(cmd.Run())
	return time.Since(start)
}

// peakRSSOf runs a command, its output discarded, and returns its peak RSS as GNU time
// reports it. (The rusage of a child of this process would not do: Go starts children with
// vfork, and the kernel counts the parent's memory at that moment as the child's peak.)
func peakRSSOf(args ...string) string {
	out := filepath.Join(*dir, "time.out")
	cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", out}, args...)...)
	if err := cmd.Run(); err != nil {
		return "n/a (" + err.Error() + ")"
	}
	b, _ := os.ReadFile(out)
	var kb int64
	fmt.Sscan(string(b), &kb)
	return mib(kb * 1024)
}

// holdInMemory keeps files in the page cache until release is called, so that a row measures
// the mount and not the disk. This machine pages out page cache left idle for about half a
// minute (1 GiB binlog: 1012 MiB resident, 2.5 MiB 40 s later, per fincore): without this, a
// row's first rounds, and unluckily some later ones, would read their sources from disk.
//
// Each file is first dropped from the cache and read back in one sequential pass, so that the
// sources of both sides of a row are cached alike. How a file came into the cache decides the
// size of its folios, and that decides the cost of every pread from it: the bench binlog,
// partly still cached from being written, read at 11-15 GB/s in 4 KiB to 128 KiB folios,
// its plaintext twin, read back after a page-out, at 17-20 GB/s in 256 KiB ones. After a drop
// and a read, both were mostly in 2 MiB folios (counted with /proc/kpageflags).
func holdInMemory(paths ...string) (release func()) {
	var held [][]byte
	for _, path := range paths {
		f, err := os.Open(path)
		check(err)
		info, err := f.Stat()
		check(err)
		check(unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED))
		_, err = io.Copy(io.Discard, f)
		check(err)
		m, err := unix.Mmap(int(f.Fd()), 0, int(info.Size()), unix.PROT_READ, unix.MAP_SHARED)
		f.Close()
		check(err)
		check(unix.Mlock(m))
		held = append(held, m)
	}
	return func() {
		for _, m := range held {
			unix.Munmap(m)
		}
	}
}

// touchFreshMemory takes n bytes of memory from the kernel, touches every page, and gives
// them back, right before a timed run. This VM returns free memory to its host, and the first
// touch of such a page costs a fault in the hypervisor (touching 1.5 GiB of it took 0.9 s of
// system time): a run whose page cache landed on returned pages took 2-4 times the CPU.
// Touching first makes the run take memory the host backs, as long as the kernel does not
// report it free again before the run (see holdFreedMemory).
func touchFreshMemory(n int64) {
	m, err := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	check(err)
	check(unix.Munmap(m))
}

// reportDelay is the kernel parameter of this VM's free page reporting (a patch of its own,
// not in mainline Linux) that sets how long a page stays free before the host is told and
// takes it back: 0 here, so that memory a run frees, its page cache at unmount or the pages
// touchFreshMemory touched, goes back to the host at once, and the next run takes faults in
// the hypervisor on it. Which pages that hit, and when, differed from run to run: in perf
// profiles of mounts serving the same five 1 GiB reads, the kernel's copy of replies into
// the page cache took from 3,300 to 15,100 samples (2,000-2,600 once held memory had been
// used).
const reportDelay = "/sys/module/page_reporting/parameters/min_free_ms"

// restoreFreedMemory puts back the setting holdFreedMemory changed; check calls it too,
// since os.Exit skips deferred calls.
var restoreFreedMemory = func() {}

// holdFreedMemory has the kernel keep freed pages for a minute before it reports them to the
// host, so that every run reuses backed memory. It does nothing on a kernel without the
// parameter.
func holdFreedMemory() {
	old, err := os.ReadFile(reportDelay)
	if err != nil || os.WriteFile(reportDelay, []byte("60000"), 0o644) != nil {
		return
	}
	fmt.Fprintf(os.Stderr, "holding freed memory from the host for the run (%s: %s -> 60000)\n", reportDelay, strings.TrimSpace(string(old)))
	restoreFreedMemory = func() { os.WriteFile(reportDelay, old, 0o644) }
}

func dropCaches() {
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200)
}

func throughput(bytes int64, d time.Duration) string {
	return fmt.Sprintf("%.0f MB/s", float64(bytes)/d.Seconds()/1e6)
}

// pairedRatio is the median over rounds of num[i]/den[i], the two sides' times in round i,
// followed by the quartiles of those ratios. The two sides of a round ran seconds apart, so
// a spell in which this VM's host ran everything slower counts against both, where a ratio
// of the two sides' medians may take them from different spells: P1's loopback ranged from
// 1,871 to 2,337 MB/s over one run's 16 rounds (1,216 to 2,586 in another's 10).
func pairedRatio(num, den []time.Duration) string {
	ratios := make([]float64, len(num))
	for i := range num {
		ratios[i] = num[i].Seconds() / den[i].Seconds()
	}
	sort.Float64s(ratios)
	n := len(ratios)
	return fmt.Sprintf("%.2fx [%.2f, %.2f]", ratios[n/2], ratios[n/4], ratios[(3*n)/4])
}

func median(ds []time.Duration) time.Duration {
	return medianBy(ds, func(d time.Duration) time.Duration { return d })
}

// medianBy is the element with the median key (the upper one of an even count). It leaves
// xs in its order: the rounds of two sides pair by index.
func medianBy[T any](xs []T, key func(T) time.Duration) T {
	sorted := slices.Clone(xs)
	sort.Slice(sorted, func(i, j int) bool { return key(sorted[i]) < key(sorted[j]) })
	return sorted[len(sorted)/2]
}

func fileSize(path string) int64 {
	info, err := os.Stat(path)
	check(err)
	return info.Size()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/MiB) }
