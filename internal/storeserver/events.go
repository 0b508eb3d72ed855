package storeserver

import (
	"sync"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// eventQueue is a subscriber's backlog of events. It grows with the
// backlog, up to limit, rather than reserving room for limit events up
// front: a channel of 65,536 events is 5 MiB for every subscriber, idle
// or not.
type eventQueue struct {
	mu     sync.Mutex
	q      []storewire.Event // q[head:] is the backlog
	head   int
	limit  int
	closed bool
	ready  chan struct{} // capacity 1: the backlog grew or the queue closed
}

func newEventQueue(limit int) *eventQueue {
	return &eventQueue{limit: limit, ready: make(chan struct{}, 1)}
}

// push queues ev; it reports false when the backlog is full.
func (e *eventQueue) push(ev storewire.Event) bool {
	e.mu.Lock()
	if len(e.q)-e.head >= e.limit {
		e.mu.Unlock()
		return false
	}
	if e.head > 0 && len(e.q) == cap(e.q) {
		// Reuse the room of the events already sent before growing.
		n := copy(e.q, e.q[e.head:])
		e.q, e.head = e.q[:n], 0
	}
	e.q = append(e.q, ev)
	e.mu.Unlock()
	e.signal()
	return true
}

// add queues ev whatever the limit (a subscription's snapshot).
func (e *eventQueue) add(ev storewire.Event) {
	e.mu.Lock()
	e.q = append(e.q, ev)
	e.mu.Unlock()
	e.signal()
}

func (e *eventQueue) signal() {
	select {
	case e.ready <- struct{}{}:
	default:
	}
}

// close ends the queue: pop returns what is queued, then false.
func (e *eventQueue) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.signal()
}

// popBatch waits for the next events and appends up to max of them to
// batch (a subscriber's writer sends them in one write); false once the
// queue is closed and drained.
func (e *eventQueue) popBatch(batch []storewire.Event, max int) ([]storewire.Event, bool) {
	for {
		batch, open, took := e.take(batch, max)
		if took || !open {
			return batch, open
		}
		<-e.ready
	}
}

// tryPopBatch is popBatch without the wait: it appends what is queued,
// up to max, and reports whether the queue is still open.
func (e *eventQueue) tryPopBatch(batch []storewire.Event, max int) ([]storewire.Event, bool) {
	batch, open, _ := e.take(batch, max)
	return batch, open
}

// take appends up to max queued events to batch; took says whether there
// were any, open whether the queue is open or still holds events.
func (e *eventQueue) take(batch []storewire.Event, max int) (_ []storewire.Event, open, took bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.head == len(e.q) {
		return batch, !e.closed, false
	}
	n := min(len(e.q)-e.head, max)
	batch = append(batch, e.q[e.head:e.head+n]...)
	clear(e.q[e.head : e.head+n]) // drop the metadata copies they hold
	if e.head += n; e.head == len(e.q) {
		e.head = 0
		e.q = e.q[:0]
		if cap(e.q) > keepEvents {
			e.q = nil // a drained burst does not keep its memory
		}
	}
	return batch, true, true
}

// keepEvents is the most event slots a drained queue keeps.
const keepEvents = 256
