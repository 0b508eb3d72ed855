package storeserver

import (
	"time"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// maxPendingGets bounds the blocked Gets one client may have in flight, so
// a client cannot make the store hold unbounded waiters.
const maxPendingGets = 4096

// waiter is a Get that could not be answered at once. It is completed by
// the Seal of its last missing object or by its timer, whichever comes
// first; done guards against both.
type waiter struct {
	c       *client
	reqID   uint32
	ids     []id
	res     []storewire.GetResult
	missing int
	timer   *time.Timer
	done    bool
}

// get answers a Get at once when it can (every object sealed, or a poll),
// and otherwise registers a waiter; reply is nil in that case and the
// answer is sent later through c.send.
func (s *state) get(c *client, reqID uint32, m *storewire.IDList) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := &waiter{c: c, reqID: reqID, ids: m.IDs, res: make([]storewire.GetResult, len(m.IDs))}
	for i, oid := range m.IDs {
		if o, ok := s.objects[oid]; ok && o.sealed && !o.deletePending {
			s.fill(w, i, o)
		} else {
			w.missing++
		}
	}
	if w.missing == 0 || m.TimeoutMs == 0 {
		return storewire.GetReply{Objects: w.res}.Append(nil), nil
	}
	if c.pending >= maxPendingGets {
		s.releaseResults(w)
		return nil, errf(storewire.CodeInvalidRequest, "get: this client already has %d blocked Gets", c.pending)
	}
	c.pending++
	c.waits[w] = struct{}{}
	for i, oid := range w.ids {
		if !w.res[i].Found {
			ws := s.waiters[oid]
			if ws == nil {
				ws = map[*waiter]struct{}{}
				s.waiters[oid] = ws
			}
			ws[w] = struct{}{}
		}
	}
	if m.TimeoutMs > 0 {
		w.timer = time.AfterFunc(time.Duration(m.TimeoutMs)*time.Millisecond, func() { s.expire(w) })
	}
	return nil, nil
}

func (s *state) fill(w *waiter, i int, o *object) {
	s.ref(w.c, o)
	w.res[i] = storewire.GetResult{Found: true, Location: storewire.Location{
		Offset: o.off, DataSize: o.dataSize, MetaSize: o.metaSize},
		HasDigest: o.hasDigest, Digest: o.digest}
}

// wake hands a newly sealed object to every waiter blocked on it.
func (s *state) wake(o *object) {
	ws := s.waiters[o.id]
	if ws == nil {
		return
	}
	delete(s.waiters, o.id)
	for w := range ws {
		for i, oid := range w.ids {
			if oid == o.id && !w.res[i].Found {
				s.fill(w, i, o)
				w.missing--
			}
		}
		if w.missing == 0 {
			s.finish(w)
		}
	}
}

// expire answers a waiter with whatever it has when its timeout passes.
func (s *state) expire(w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !w.done {
		s.finish(w)
	}
}

// finish unregisters w and sends its reply. The offsets filled in earlier
// still hold: a found object is referenced, and referenced objects are
// never moved by compaction.
func (s *state) finish(w *waiter) {
	s.unregister(w)
	w.c.send(storewire.TypeGet|storewire.ReplyBit, w.reqID, storewire.GetReply{Objects: w.res}.Append(nil))
}

func (s *state) unregister(w *waiter) {
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
	}
	delete(w.c.waits, w)
	w.c.pending--
	for _, oid := range w.ids {
		if ws := s.waiters[oid]; ws != nil {
			delete(ws, w)
			if len(ws) == 0 {
				delete(s.waiters, oid)
			}
		}
	}
}

// cancelWait drops a waiter whose client went away, with its references.
func (s *state) cancelWait(w *waiter) {
	s.unregister(w)
	s.releaseResults(w)
}

func (s *state) releaseResults(w *waiter) {
	for i := range w.res {
		if w.res[i].Found {
			s.releaseLocked(w.c, s.objects[w.ids[i]], 1)
			w.res[i].Found = false
		}
	}
}
