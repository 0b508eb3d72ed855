package streamserver

import (
	"context"
	"sync"
	"time"
)

// The dashboard's charts: one sample a second of the transfer counters
// and the store's usage, the last historyLen of them, kept in memory.

const (
	historyEvery = time.Second
	historyLen   = 600 // ten minutes
)

// sample is the node at one instant; the dashboard derives throughput
// from the counters of successive samples.
type sample struct {
	T        int64  `json:"t"` // Unix milliseconds
	Sent     uint64 `json:"sent"`
	Received uint64 `json:"received"`
	Used     uint64 `json:"used"`
	Capacity uint64 `json:"capacity"`
	Objects  uint64 `json:"objects"`
	StoreUp  bool   `json:"store_up"`
}

// history is a ring of samples.
type history struct {
	mu      sync.Mutex
	samples []sample // oldest first, at most historyLen
}

func (h *history) add(s sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.samples) == historyLen {
		copy(h.samples, h.samples[1:])
		h.samples = h.samples[:historyLen-1]
	}
	h.samples = append(h.samples, s)
}

func (h *history) snapshot() []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sample{}, h.samples...)
}

// recordHistory samples the node every historyEvery until ctx ends.
func (s *Server) recordHistory(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(historyEvery)
	defer t.Stop()
	for {
		s.history.add(s.sample(ctx))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) sample(ctx context.Context) sample {
	smp := sample{T: time.Now().UnixMilli(), Sent: s.stats.BytesSent.Load(), Received: uint64(s.activity.Received())}
	if sc, err := s.useStore(); err == nil {
		sctx, cancel := context.WithTimeout(ctx, historyEvery)
		st, err := sc.st.Stats(sctx)
		cancel()
		sc.release()
		if err == nil {
			smp.StoreUp, smp.Used, smp.Capacity, smp.Objects = true, st.Used, st.Capacity, st.Objects
		}
	}
	return smp
}
