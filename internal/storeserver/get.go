package storeserver

import (
	"bytes"
	"math"
	"slices"
	"time"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// maxPendingGets bounds the blocked Gets one client may have in flight, so
// a client cannot make the store hold unbounded waiters.
const maxPendingGets = 4096

// A waiter's positions are uint16s: a Get has at most 65,536 ids.
var _ = [1<<16 - storewire.MaxIDsPerRequest]struct{}{}

// waiter is a Get that could not be answered at once. It is completed by
// the Seal of its last missing object or by its timer, whichever comes
// first; done guards against both.
//
// Its memory stays close to the request's size (20 bytes an storewire.ID): the ids
// are the decoded request's slice, the missing ones are found by binary
// search through byID (2 bytes an storewire.ID), found objects are one bit each
// (their locations are read when the reply is built: a referenced object
// never moves), and the index holds one entry per distinct storewire.ID prefix.
type waiter struct {
	c        *client
	reqID    uint32
	ids      []storewire.ID // request order
	byID     []uint16       // positions of the ids missing at registration, sorted by id
	found    []uint64       // bitmap over ids: found, and referenced by c
	missing  int
	internal bool   // the Get does not count as a use
	restores int    // positions waiting for a restore from the cold tier
	poll     bool   // timeout 0: answered once its restores end
	cost     uint64 // bytes charged to the state's waitBytes
	timer    *time.Timer
	done     bool
}

func (w *waiter) isFound(i int) bool { return w.found[i/64]&(1<<(i%64)) != 0 }

// waiterCost estimates a blocked Get's memory: its ids, its position
// index, its bitmap, the index entries and the fixed parts.
func waiterCost(ids, missing int) uint64 {
	return uint64(ids)*storewire.IDSize + uint64(missing)*(2+waitIndexEntry) + uint64(ids)/8 + 256
}

// maxTimeoutMs is the longest timeout a timer can hold; longer ones (a
// client sending 2^63-1 for "practically forever") wait forever.
const maxTimeoutMs = math.MaxInt64 / int64(time.Millisecond)

// get answers a Get at once when it can (every object sealed, or a poll),
// and otherwise registers a waiter; reply is nil in that case and the
// answer is sent later through c.send.
func (s *state) get(c *client, reqID uint32, m *storewire.Get) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := &waiter{c: c, reqID: reqID, ids: m.IDs, found: make([]uint64, (len(m.IDs)+63)/64),
		internal: m.Flags&storewire.GetInternal != 0}
	for i, oid := range m.IDs {
		if o, ok := s.objects[oid]; ok && o.sealed && !o.deletePending {
			s.fill(w, i, o)
		} else {
			w.missing++
			if s.restoreFor(oid) {
				w.restores++
			}
		}
	}
	w.poll = m.TimeoutMs == 0
	if w.missing == 0 || w.poll && w.restores == 0 {
		return s.replyOf(w), nil
	}
	if c.pending >= maxPendingGets {
		s.releaseResults(w)
		return nil, errf(storewire.CodeBusy, "get: this client already has %d blocked Gets; wait for some to finish", c.pending)
	}
	w.cost = waiterCost(len(w.ids), w.missing)
	if s.waitBytes+w.cost > s.waitBudget {
		s.releaseResults(w)
		return nil, errf(storewire.CodeBusy,
			"get: store busy: blocked Gets hold %d bytes of their %d-byte budget and this one, waiting for %d objects, needs %d; retry later or wait for fewer objects",
			s.waitBytes, s.waitBudget, w.missing, w.cost)
	}
	s.waitBytes += w.cost
	c.pending++
	c.waits[w] = struct{}{}
	w.byID = make([]uint16, 0, w.missing)
	for i := range w.ids {
		if !w.isFound(i) {
			w.byID = append(w.byID, uint16(i))
		}
	}
	slices.SortFunc(w.byID, func(a, b uint16) int { return bytes.Compare(w.ids[a][:], w.ids[b][:]) })
	w.eachKey(func(k uint64) { s.waiters.add(k, w) })
	if m.TimeoutMs > 0 && m.TimeoutMs <= maxTimeoutMs {
		w.timer = time.AfterFunc(time.Duration(m.TimeoutMs)*time.Millisecond, func() { s.expire(w) })
	}
	return nil, nil
}

// eachKey calls f once for each distinct index key of w's missing ids
// (sorted ids put equal prefixes next to each other).
func (w *waiter) eachKey(f func(uint64)) {
	for j, i := range w.byID {
		k := waitKey(w.ids[i])
		if j == 0 || k != waitKey(w.ids[w.byID[j-1]]) {
			f(k)
		}
	}
}

func (s *state) fill(w *waiter, i int, o *object) {
	s.ref(w.c, o, !w.internal)
	w.found[i/64] |= 1 << (i % 64)
}

// wake hands a newly sealed object to every waiter blocked on it.
func (s *state) wake(o *object) {
	for _, w := range s.waiters.lookup(waitKey(o.id)) {
		if w.done {
			continue
		}
		// The positions holding o.id form one run in byID.
		j, _ := slices.BinarySearchFunc(w.byID, o.id, func(i uint16, t storewire.ID) int { return bytes.Compare(w.ids[i][:], t[:]) })
		for ; j < len(w.byID) && w.ids[w.byID[j]] == o.id; j++ {
			if i := int(w.byID[j]); !w.isFound(i) {
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

// finish unregisters w and sends its reply.
func (s *state) finish(w *waiter) {
	s.unregister(w)
	w.c.send(storewire.TypeGet|storewire.ReplyBit, w.reqID, s.replyOf(w))
}

// replyOf encodes w's answer. The objects it found are referenced, so
// they are still in the table at the offsets they had, unless the client
// released them before it saw the reply (then they count as not found).
func (s *state) replyOf(w *waiter) []byte {
	res := make([]storewire.GetResult, len(w.ids))
	for i, oid := range w.ids {
		if !w.isFound(i) {
			continue
		}
		if o := s.objects[oid]; o != nil && w.c.refs[oid] > 0 {
			res[i] = storewire.GetResult{Found: true, Location: storewire.Location{
				Offset: o.off, DataSize: o.dataSize, MetaSize: o.metaSize},
				HasDigest: o.hasDigest, Digest: o.digest}
		}
	}
	return storewire.GetReply{Objects: res}.Append(nil)
}

func (s *state) unregister(w *waiter) {
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
	}
	delete(w.c.waits, w)
	w.c.pending--
	s.waitBytes -= w.cost
	w.eachKey(func(k uint64) { s.waiters.remove(k, w) })
	w.byID = nil
}

// cancelWait drops a waiter whose client went away, with its references.
func (s *state) cancelWait(w *waiter) {
	s.unregister(w)
	s.releaseResults(w)
}

// releaseResults drops the references w took. A client may have released
// them already (it can release an id it holds from another Get), so only
// references the client still holds are dropped.
func (s *state) releaseResults(w *waiter) {
	for i, oid := range w.ids {
		if w.isFound(i) {
			w.found[i/64] &^= 1 << (i % 64)
			if o := s.objects[oid]; o != nil && w.c.refs[oid] > 0 {
				s.releaseLocked(w.c, o, 1)
			}
		}
	}
}
