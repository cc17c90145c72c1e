package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mysqllogfs/mysqllogfs/fs"
)

// What a service manager and a monitoring system see of a mount in the foreground.

// notify tells systemd (when it started the mount with NOTIFY_SOCKET set) how the mount is:
// READY=1, STOPPING=1, STATUS=...; nothing without it.
func notify(log *slog.Logger, states ...string) {
	state := ""
	for _, s := range states {
		state += s + "\n"
	}
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("cannot notify systemd", "reason", err.Error())
	}
}

// serviceStatus is what systemd is told of a mount: READY=1 once mounted, how the proof of
// sizes after mounting goes (which may end before or after that), STOPPING=1 at the end.
type serviceStatus struct {
	log     *slog.Logger
	serving string
	showBar bool

	mu                      sync.Mutex
	bar                     *progress
	started, proven         bool
	readySent, stoppingSent bool
}

func (s *serviceStatus) text() string {
	if s.proven {
		return "STATUS=" + s.serving + "; proof of sizes done"
	}
	return "STATUS=" + s.serving + "; proving sizes"
}

// ready sends READY=1 with the status as it is now.
func (s *serviceStatus) ready() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readySent = true
	notify(s.log, "READY=1", s.text())
}

// stopping sends STOPPING=1; nothing is sent after it.
func (s *serviceStatus) stopping() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stoppingSent = true
	notify(s.log, "STOPPING=1", "STATUS=unmounting")
}

// proving is told how the proof goes (fs.Options.Proving): a bar on a terminal, and the
// status once it has finished.
func (s *serviceStatus) proving(done, total int64, finished bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started = true
		if s.showBar {
			s.bar = newProgress("proving sizes", total)
		}
	}
	s.bar.at(done)
	if finished {
		s.proven = true
		s.bar.finish()
		if s.readySent && !s.stoppingSent {
			notify(s.log, s.text())
		}
	}
}

// serveMetrics serves m at http://addr/metrics until the process ends. A failure to listen
// is returned before mounting, so that a wrong address stops the mount at once.
func serveMetrics(addr string, m *fs.Metrics, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{}))
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "reason", err.Error())
		}
	}()
	log.Info("serving metrics", "address", "http://"+ln.Addr().String()+"/metrics")
	return nil
}
