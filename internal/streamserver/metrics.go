package streamserver

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/plasmastream/plasmastream/internal/streamwire"
)

// metrics are the server's Prometheus series, in a registry of its own
// (no global state: several servers can run in one process, as tests do).
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	connections  prometheus.Gauge
	busy         prometheus.Counter
	notPermitted prometheus.Counter
	overBudget   prometheus.Counter
	storeUp      prometheus.Gauge
	duration     *prometheus.HistogramVec
	stateLost    *prometheus.CounterVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plasma_stream_requests_total", Help: "Requests served, by type and result status.",
		}, []string{"type", "status"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plasma_stream_connections_active", Help: "Connections being served.",
		}),
		notPermitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plasma_stream_not_permitted_total", Help: "Connections refused because the peer is not permitted (protected mode: a non-loopback peer of a server without keys).",
		}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plasma_stream_busy_rejections_total", Help: "Connections refused because --max-connections was reached.",
		}),
		overBudget: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plasma_stream_request_memory_rejections_total", Help: "Requests refused because they did not fit in --request-memory.",
		}),
		storeUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plasma_stream_store_up", Help: "1 while the local store is connected, 0 while it is down and the server reconnects.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "plasma_stream_transfer_duration_seconds", Help: "Duration of COPY/TAKE transfers, sending to peers or receiving from them.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"direction"}),
		stateLost: newStateLost(),
	}
	st := &s.stats
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(m.requests, m.connections, m.busy, m.notPermitted, m.overBudget, m.storeUp, m.duration, m.stateLost,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "plasma_stream_request_memory_bytes", Help: "Request memory held by requests being read or served (see --request-memory)."},
			func() float64 { return float64(s.budget.inUse()) }),
		counter("plasma_stream_bytes_sent_total", "Object bytes (data and metadata) sent to peers.", func() float64 { return float64(st.BytesSent.Load()) }),
		counter("plasma_stream_objects_sent_total", "Objects sent to peers.", func() float64 { return float64(st.ObjectsSent.Load()) }),
		counter("plasma_stream_bytes_received_total", "Object bytes received from peers (COPY/TAKE: counted once verified and sealed; RANGE: as they arrive).", func() float64 { return float64(st.BytesReceived.Load()) }),
		counter("plasma_stream_bytes_verified_total", "Data bytes received by RANGE that verified against the object's bao outboard.", func() float64 { return float64(st.BytesVerified.Load()) }),
		counter("plasma_stream_bytes_rerequested_total", "Data bytes asked for again after a broken or corrupt RANGE transfer.", func() float64 { return float64(st.BytesRerequested.Load()) }),
		counter("plasma_stream_corrupt_groups_total", "16 KiB groups rejected because they did not match the object's bao outboard (each cuts its transfer).", func() float64 { return float64(st.CorruptGroups.Load()) }),
		counter("plasma_stream_objects_received_total", "Objects received, verified and sealed.", func() float64 { return float64(st.ObjectsReceived.Load()) }),
		counter("plasma_stream_integrity_failures_total", "Objects rejected because their BLAKE3 digest did not match.", func() float64 { return float64(st.IntegrityFailures.Load()) }),
		counter("plasma_stream_take_deletes_total", "Objects deleted at this source after a TAKE.", func() float64 { return float64(st.DeletedOnTake.Load()) }),
		collectors.NewGoCollector(),
	)
	return m
}

func (m *metrics) request(typ string, status streamwire.Status) {
	m.requests.WithLabelValues(typ, status.String()).Inc()
}

// handler serves /healthz and /readyz to anyone, and behind auth (the
// read role, with keys) /metrics, the dashboard and its API, and Go's
// profiler under /debug/pprof/ when pprof is set (--debug-pprof).
func (m *metrics) handler(s *Server, pprofOn bool, auth func(http.Handler) http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/readyz", s.readyz)
	mux.Handle("/metrics", auth(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})))
	mux.Handle("/api/state", auth(readOnly(http.HandlerFunc(s.apiState))))
	mux.Handle("/api/locate", auth(readOnly(http.HandlerFunc(s.apiLocate))))
	mux.Handle("/", auth(readOnly(dashboardHandler())))
	if pprofOn {
		mux.Handle("/debug/pprof/", auth(http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/profile", auth(http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/trace", auth(http.HandlerFunc(pprof.Trace)))
	}
	return mux
}
