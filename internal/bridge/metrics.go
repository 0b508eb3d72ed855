package bridge

import "github.com/prometheus/client_golang/prometheus"

// metrics are the bridge's Prometheus series, registered with the
// server's registry (Config.Registerer).
type metrics struct {
	requests      *prometheus.CounterVec // by op and result
	announcements *prometheus.CounterVec // received, by what became of them
	replications  *prometheus.CounterVec // attempts, by result
	bytes         prometheus.Counter     // verified by replications
	blobs         *prometheus.Desc       // known blobs, by state
	b             *Bridge
}

func newMetrics(b *Bridge) *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plasma_bridge_requests_total", Help: "NATS requests answered by the bridge, by operation and result (ok, error).",
		}, []string{"op", "result"}),
		announcements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plasma_bridge_announcements_total", Help: "Announcements received on subscribed subjects: accepted, refused (signature, trust) or malformed.",
		}, []string{"result"}),
		replications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plasma_bridge_replication_attempts_total", Help: "Fetches of announced blobs, by result (replicated, held, failed).",
		}, []string{"result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plasma_bridge_replicated_bytes_total", Help: "Bytes of announced blobs fetched and verified here.",
		}),
		blobs: prometheus.NewDesc("plasma_bridge_blobs", "Announced blobs this node knows, by replication state.", []string{"state"}, nil),
		b:     b,
	}
}

func (m *metrics) register(r prometheus.Registerer) {
	if r != nil {
		r.MustRegister(m.requests, m.announcements, m.replications, m.bytes, m)
	}
}

// Describe and Collect make the blob counts a collector of their own,
// counted when scraped.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.blobs }

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{StateQueued: 0, StateFetching: 0, StateFailed: 0, StateReplicated: 0, StateHeld: 0}
	m.b.mu.Lock()
	for _, bl := range m.b.blobs {
		counts[bl.state]++
	}
	m.b.mu.Unlock()
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.blobs, prometheus.GaugeValue, float64(n), s)
	}
}
