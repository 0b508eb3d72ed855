package storeserver

import (
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// tryPopBatch takes what is queued, up to max, and never waits: the
// subscriber's writer uses it to add the events of its linger to a batch.
func TestTryPopBatchNeverWaits(t *testing.T) {
	q := newEventQueue(16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b, ok := q.tryPopBatch(nil, 4)
		if len(b) != 0 || !ok {
			t.Errorf("empty open queue: %d events, open %v; want none, open", len(b), ok)
		}
		for i := range 6 {
			q.push(storewire.Event{DataSize: uint64(i)})
		}
		b, ok = q.tryPopBatch(b, 4)
		if len(b) != 4 || !ok || b[3].DataSize != 3 {
			t.Errorf("took %v, open %v; want the first 4, open", b, ok)
		}
		b, _ = q.tryPopBatch(b[:0], 4)
		if len(b) != 2 || b[1].DataSize != 5 {
			t.Errorf("took %v, want the last 2", b)
		}
		q.close()
		if b, ok := q.tryPopBatch(b[:0], 4); len(b) != 0 || ok {
			t.Errorf("closed empty queue: %d events, open %v", len(b), ok)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("tryPopBatch waited")
	}
}
