package storeserver

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// Metrics on --metrics-addr (docs/metrics.md). The request path pays one
// clock read and one histogram Observe per request, into observers
// resolved once at start (no label lookup, no allocation); everything
// else — objects and bytes by state, the allocator, the counters — is
// read from the state when Prometheus scrapes, under the state's mutex
// once per scrape.

// maxRequestType is the highest request type with a series of its own.
const maxRequestType = storewire.TypeCreateAndSealBatch

// metrics are the store's Prometheus series, in a registry of their own.
type metrics struct {
	reg     *prometheus.Registry
	latency [maxRequestType + 1]prometheus.Observer // by request type
	failed  [maxRequestType + 1]prometheus.Counter
	unknown prometheus.Counter // requests of a type the store does not know
	busy    prometheus.Counter // clients refused beyond --max-clients
}

func newMetrics(s *Server) *metrics {
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "plasma_store_request_duration_seconds",
		Help: "Time to handle a request and write its reply, by request type (a blocked Get: until it blocks; its later reply is not counted).",
		// 1 µs to ~4 s.
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
	}, []string{"type"})
	failed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plasma_store_request_errors_total", Help: "Requests answered with an error, by request type.",
	}, []string{"type"})
	m := &metrics{reg: prometheus.NewRegistry(),
		unknown: prometheus.NewCounter(prometheus.CounterOpts{Name: "plasma_store_unknown_requests_total", Help: "Requests of a type this store does not know."}),
		busy:    prometheus.NewCounter(prometheus.CounterOpts{Name: "plasma_store_busy_rejections_total", Help: "Clients refused because --max-clients were connected."}),
	}
	for t := storewire.TypeCreate; t <= maxRequestType; t++ {
		if t == storewire.TypeEvent {
			continue // sent by the store, never requested
		}
		m.latency[t] = latency.WithLabelValues(t.String())
		m.failed[t] = failed.WithLabelValues(t.String())
	}
	m.reg.MustRegister(latency, failed, m.unknown, m.busy, &stateCollector{s: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// now is the start of a request: the clock is not read without metrics.
func (m *metrics) now() time.Time {
	if m == nil {
		return time.Time{}
	}
	return time.Now()
}

// request records one request of type t that began at start. It is
// safe on a nil *metrics (no --metrics-addr): then it costs nothing.
func (m *metrics) request(t storewire.Type, start time.Time, failed bool) {
	if m == nil {
		return
	}
	if t > maxRequestType || m.latency[t] == nil {
		m.unknown.Inc()
		return
	}
	m.latency[t].Observe(time.Since(start).Seconds())
	if failed {
		m.failed[t].Inc()
	}
}

func (m *metrics) refused() {
	if m != nil {
		m.busy.Inc()
	}
}

// stateCollector reads the state at scrape time.
type stateCollector struct{ s *Server }

var (
	descObjects      = prometheus.NewDesc("plasma_store_objects", "Objects in the store, by state: creating (created, not sealed yet), sealed, deleting (deleted while referenced: freed at the last release).", []string{"state"}, nil)
	descObjectBytes  = prometheus.NewDesc("plasma_store_object_bytes", "Bytes of the objects (data and metadata) in the store, by state as plasma_store_objects.", []string{"state"}, nil)
	descCapacity     = prometheus.NewDesc("plasma_store_capacity_bytes", "Bytes of shared memory for objects (-m).", nil, nil)
	descUsed         = prometheus.NewDesc("plasma_store_used_bytes", "Bytes of the arena allocated to objects (each rounded up to 64 bytes).", nil, nil)
	descPinned       = prometheus.NewDesc("plasma_store_pinned_bytes", "Bytes of objects that cannot be evicted now: unsealed, or referenced by a client.", nil, nil)
	descLargestFree  = prometheus.NewDesc("plasma_store_largest_free_bytes", "The largest contiguous free block: the largest object that fits without evicting or compacting.", nil, nil)
	descFreeBlocks   = prometheus.NewDesc("plasma_store_free_blocks", "Free blocks of the arena (fragmentation: many small ones mean compactions ahead).", nil, nil)
	descClients      = prometheus.NewDesc("plasma_store_clients", "Connected clients.", nil, nil)
	descEvictions    = prometheus.NewDesc("plasma_store_evictions_total", "Objects evicted (least recently used first) to make room, or by an Evict request.", nil, nil)
	descEvictedBytes = prometheus.NewDesc("plasma_store_evicted_bytes_total", "Bytes of the evicted objects.", nil, nil)
	descCompactions  = prometheus.NewDesc("plasma_store_compactions_total", "Compaction passes: unreferenced objects moved together to make a contiguous block.", nil, nil)
	descMoved        = prometheus.NewDesc("plasma_store_compacted_bytes_total", "Bytes moved by compaction.", nil, nil)
	descDigests      = prometheus.NewDesc("plasma_store_digest_backlog", "Sealed objects waiting for their background BLAKE3 digest and bao outboard (each waits at least a second after its seal).", nil, nil)
	descBlocked      = prometheus.NewDesc("plasma_store_blocked_get_memory_bytes", "Memory held by blocked Gets (bounded by --blocked-get-memory).", nil, nil)
	descSubscribers  = prometheus.NewDesc("plasma_store_subscribers", "Clients subscribed to the store's events (a stream server is one).", nil, nil)

	// The cold tier (-e); all zero without one.
	descSpills        = prometheus.NewDesc("plasma_store_spills_total", "Eviction victims written to the cold tier before their memory was freed, by result: ok, or failed (evicted without a copy).", []string{"result"}, nil)
	descSpilledBytes  = prometheus.NewDesc("plasma_store_spilled_bytes_total", "Bytes (data and metadata) of the objects spilled to the cold tier.", nil, nil)
	descSpilling      = prometheus.NewDesc("plasma_store_spilling_bytes", "Arena bytes of the objects being spilled now (freed when their writes end).", nil, nil)
	descRestores      = prometheus.NewDesc("plasma_store_restores_total", "Objects read back from the cold tier for a Get, by result: ok (verified and sealed), or failed.", []string{"result"}, nil)
	descRestoredBytes = prometheus.NewDesc("plasma_store_restored_bytes_total", "Bytes (data and metadata) of the objects restored from the cold tier.", nil, nil)
	descColdObjects   = prometheus.NewDesc("plasma_store_cold_objects", "Objects of which the cold tier holds a copy, as far as this store knows, by whether the store also has them in memory (in_memory) or not (cold_only).", []string{"where"}, nil)
	descColdBytes     = prometheus.NewDesc("plasma_store_cold_bytes", "Data bytes of the objects of plasma_store_cold_objects, by the same label.", []string{"where"}, nil)
	descColdDescs     = []*prometheus.Desc{descSpills, descSpilledBytes, descSpilling, descRestores, descRestoredBytes, descColdObjects, descColdBytes}
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descObjects, descObjectBytes, descCapacity, descUsed, descPinned, descLargestFree, descFreeBlocks,
		descClients, descEvictions, descEvictedBytes, descCompactions, descMoved, descDigests, descBlocked, descSubscribers} {
		ch <- d
	}
	for _, d := range descColdDescs {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.s.st.metricsView()
	gauge := func(d *prometheus.Desc, x uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(x), labels...)
	}
	counter := func(d *prometheus.Desc, x uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(x))
	}
	for i, name := range stateNames {
		gauge(descObjects, v.objects[i], name)
		gauge(descObjectBytes, v.bytes[i], name)
	}
	gauge(descCapacity, v.capacity)
	gauge(descUsed, v.used)
	gauge(descPinned, v.pinned)
	gauge(descLargestFree, v.largestFree)
	gauge(descFreeBlocks, v.freeBlocks)
	gauge(descClients, v.clients)
	gauge(descBlocked, v.waitBytes)
	gauge(descSubscribers, v.subscribers)
	gauge(descDigests, uint64(max(0, c.s.st.digestBacklog.Load())))
	counter(descEvictions, v.n.evictions)
	counter(descEvictedBytes, v.n.evictedBytes)
	counter(descCompactions, v.n.compactions)
	counter(descMoved, v.n.movedBytes)

	labelled := func(d *prometheus.Desc, t prometheus.ValueType, x uint64, label string) {
		ch <- prometheus.MustNewConstMetric(d, t, float64(x), label)
	}
	labelled(descSpills, prometheus.CounterValue, v.n.spills, "ok")
	labelled(descSpills, prometheus.CounterValue, v.n.spillFailures, "failed")
	counter(descSpilledBytes, v.n.spilledBytes)
	gauge(descSpilling, v.spilling)
	labelled(descRestores, prometheus.CounterValue, v.n.restores, "ok")
	labelled(descRestores, prometheus.CounterValue, v.n.restoreFailures, "failed")
	counter(descRestoredBytes, v.n.restoredBytes)
	for i, where := range [2]string{"in_memory", "cold_only"} {
		gauge(descColdObjects, v.coldObjects[i], where)
		gauge(descColdBytes, v.coldBytes[i], where)
	}
}

// Object states of plasma_store_objects.
const (
	stateCreating = iota
	stateSealed
	stateDeleting
	numStates
)

var stateNames = [numStates]string{"creating", "sealed", "deleting"}

// metricsView is the state's figures for one scrape.
type metricsView struct {
	objects, bytes                                  [numStates]uint64
	capacity, used, pinned, largestFree, freeBlocks uint64
	clients, waitBytes, subscribers                 uint64
	n                                               counters
	// The cold tier's copies: [0] of objects also in memory, [1] of
	// objects only there.
	coldObjects, coldBytes [2]uint64
	spilling               uint64
}

func (s *state) metricsView() metricsView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := metricsView{capacity: s.capacity, used: s.alloc.Used(), pinned: s.pinned, largestFree: s.alloc.LargestFree(),
		freeBlocks: uint64(s.alloc.FreeBlocks()), clients: uint64(s.clients), waitBytes: s.waitBytes, subscribers: uint64(len(s.subs)), n: s.n}
	for _, o := range s.objects {
		st := stateSealed
		switch {
		case o.deletePending:
			st = stateDeleting
		case !o.sealed:
			st = stateCreating
		}
		v.objects[st]++
		v.bytes[st] += o.dataSize + uint64(o.metaSize)
	}
	if cs := s.cold; cs != nil {
		v.spilling = cs.spilling
		for id, e := range cs.entries {
			where := 1
			if _, ok := s.objects[id]; ok {
				where = 0
			}
			v.coldObjects[where]++
			v.coldBytes[where] += e.rec.DataSize
		}
	}
	return v
}

// listenMetrics binds --metrics-addr; nil without one.
func (s *Server) listenMetrics() (net.Listener, error) {
	if s.cfg.MetricsAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", s.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", s.cfg.MetricsAddr, err)
	}
	return ln, nil
}

// metricsHandler serves /metrics and /healthz.
func (s *Server) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "ok: store at %s, %d bytes\n", s.cfg.Socket, s.Capacity())
	})
	return mux
}

// MetricsAddr is the address the metrics listener is bound to ("" if
// none): with --metrics-addr 127.0.0.1:0, where it landed.
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}
