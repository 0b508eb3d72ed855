package storeserver

import (
	"testing"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// BenchmarkMetricsRequest is what timing one request costs the event
// loop: with --metrics-addr, and without (a nil *metrics).
func BenchmarkMetricsRequest(b *testing.B) {
	s := &Server{st: newState(make([]byte, 1<<20), 1<<20, 1<<20)}
	for _, bc := range []struct {
		name string
		m    *metrics
	}{{"on", newMetrics(s)}, {"off", nil}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.m.request(storewire.TypeGet, bc.m.now(), false)
			}
		})
	}
}
