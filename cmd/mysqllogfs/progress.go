package main

import (
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is a bar on standard error (bytes done, rate, time left) while a person waits at
// a terminal. A nil *progress, when standard error is not a terminal, shows nothing.
type progress struct {
	mu   sync.Mutex
	bar  *progressbar.ProgressBar
	base int64 // the bytes of the files already done
}

func newProgress(what string, total int64) *progress {
	if !term.IsTerminal(int(os.Stderr.Fd())) || total <= 0 {
		return nil
	}
	return &progress{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionFullWidth(),
	)}
}

// at shows done bytes of the file under way.
func (p *progress) at(done int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bar.Set64(p.base + done)
}

// fileDone counts a file of size bytes as done.
func (p *progress) fileDone(size int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.base += size
	p.bar.Set64(p.base)
}

// print runs show (which writes a line) with the bar out of its way.
func (p *progress) print(show func()) {
	if p == nil {
		show()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bar.Clear()
	show()
	p.bar.RenderBlank()
}

func (p *progress) finish() {
	if p != nil {
		p.bar.Finish()
	}
}

// sizeOfFiles is the bytes of the files that eachFile will visit.
func sizeOfFiles(paths []string) int64 {
	var total int64
	eachFile(paths, func(path string) {
		if info, err := os.Stat(path); err == nil {
			total += info.Size()
		}
	})
	return total
}
