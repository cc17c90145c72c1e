package fs

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// Metrics count what a mount serves, for Prometheus. Labels name kinds of files, outcomes and
// key sources, never a file, a key ID or anything read. A nil *Metrics counts nothing.
type Metrics struct {
	reg        *prometheus.Registry
	reads      *prometheus.CounterVec // kind
	readBytes  *prometheus.CounterVec // kind
	readErrors *prometheus.CounterVec // kind, reason
	opens      *prometheus.CounterVec // kind
	sizeProofs *prometheus.CounterVec // result
	keyLookups *prometheus.CounterVec // source, result
}

// kindEvents labels a .ndjson, beside the crypto.Kind of the other files.
const kindEvents = "events"

// NewMetrics returns the metrics of one mount, with the Go runtime's and the process's own.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mysqllogfs", Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	m.reads = counter("reads_total", "Read requests served, by file kind.", "kind")
	m.readBytes = counter("read_bytes_total", "Plaintext bytes served, by file kind.", "kind")
	m.readErrors = counter("read_errors_total", "Opens and reads that failed, by file kind and reason: "+
		"missing_key, wrong_key, corrupt, unsupported, io, interrupted or other.", "kind", "reason")
	m.opens = counter("opens_total", "Files opened, by file kind.", "kind")
	m.sizeProofs = counter("size_proofs_total", "Plaintext sizes proven by decoding a compressed log to its end, by result (ok, failed).", "result")
	m.keyLookups = counter("key_lookups_total", "Keys asked of a key source, by source (its flag) and result (found, not_found, error).", "source", "result")
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.gauge("container_layout_bytes", "Memory held by the layouts of audit logs' Salted__ containers, shared by every reader.",
		func() float64 { used, _ := crypto.LayoutBudget(); return float64(used) })
	m.gauge("container_layout_limit_bytes", "The bound of container_layout_bytes; past it, reads rescan.",
		func() float64 { _, limit := crypto.LayoutBudget(); return float64(limit) })
	return m
}

// Registry is what an HTTP handler serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// watch adds the gauges of one view's caches.
func (m *Metrics) watch(v *view) {
	if m == nil {
		return
	}
	m.gauge("open_readers", "Decrypting readers kept open, in use or cached (at most 512).", func() float64 { return float64(v.readers.count()) })
	m.gauge("known_sizes", "Plaintext sizes known to this mount, proven or from the size cache.", func() float64 { return float64(v.sizes.count()) })
}

func (m *Metrics) gauge(name, help string, value func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "mysqllogfs", Name: name, Help: help}, value))
}

func (m *Metrics) read(kind string, n int) {
	if m != nil {
		m.reads.WithLabelValues(kind).Inc()
		m.readBytes.WithLabelValues(kind).Add(float64(n))
	}
}

func (m *Metrics) open(kind string) {
	if m != nil {
		m.opens.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) failed(kind string, err error) {
	if m != nil {
		m.readErrors.WithLabelValues(kind, reason(err)).Inc()
	}
}

func (m *Metrics) proof(err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.sizeProofs.WithLabelValues(result).Inc()
}

// reason is an error's label: crypto.Status in a metric's words.
func reason(err error) string {
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	switch crypto.Status(err) {
	case "missing key":
		return "missing_key"
	case "wrong key":
		return "wrong_key"
	case "corrupt":
		return "corrupt"
	case "unsupported":
		return "unsupported"
	case "I/O error":
		return "io"
	}
	return "other"
}

// CountLookups returns src counting its lookups under the source label name.
func (m *Metrics) CountLookups(name string, src keysrc.Source) keysrc.Source {
	if m == nil {
		return src
	}
	return countedSource{src, name, m.keyLookups}
}

type countedSource struct {
	keysrc.Source
	name    string
	lookups *prometheus.CounterVec
}

func (c countedSource) Lookup(id, owner string) (keysrc.Key, error) {
	k, err := c.Source.Lookup(id, owner)
	result := "found"
	switch {
	case errors.Is(err, keysrc.ErrNotFound):
		result = "not_found"
	case err != nil:
		result = "error"
	}
	c.lookups.WithLabelValues(c.name, result).Inc()
	return k, err
}
