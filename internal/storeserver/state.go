package storeserver

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/btree"

	"github.com/plasmastream/plasmastream/internal/alloc"
	"github.com/plasmastream/plasmastream/internal/coldtier"
	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// object is one entry of the object table.
type object struct {
	id        storewire.ID
	off       uint64 // allocation start; data at off, metadata at off+dataSize
	dataSize  uint64
	metaSize  uint32
	allocSize uint64 // dataSize+metaSize, at least 1 (the allocator rounds to 64)

	sealed        bool
	creator       *client // nil once sealed
	refs          int
	deletePending bool
	onLRU         bool   // on the LRU tree
	useSeq        uint64 // LRU position: the store's use count at the last use
	// touched is set when a client that counts as a user (not the
	// hasher, not an internal Get) references the object; the last
	// release then moves it to the most recently used end.
	touched bool

	created     time.Time
	constructNs int64 // create to seal; -1 while unsealed
	creatorPID  uint32
	lastUse     time.Time // seal or the last release of a use
	hasDigest   bool
	digest      wire.Digest
	outboard    []byte        // bao outboard, 16 KiB groups (nil for one group, or not built yet)
	building    chan struct{} // closed when the hashing in progress ends
	spillFailed bool          // its write to the cold tier failed: evict it without a copy
}

// client is the per-connection part of the state.
type client struct {
	pid     uint32
	refs    map[storewire.ID]int     // references this client holds
	created map[storewire.ID]*object // its unsealed objects
	waits   map[*waiter]struct{}
	events  *eventQueue                          // non-nil once subscribed
	digests bool                                 // a subscriber of digest events too
	info    bool                                 // a subscriber of events with the object's info
	cold    bool                                 // a subscriber of cold events too
	send    func(storewire.Type, uint32, []byte) // async replies
	drop    func()                               // ends the connection
	pending int                                  // blocked Gets in flight
}

func newClient(pid uint32) *client {
	return &client{pid: pid, refs: map[storewire.ID]int{}, created: map[storewire.ID]*object{}, waits: map[*waiter]struct{}{}}
}

// opError is a failed request: its code travels in an Error reply.
type opError struct {
	code storewire.Code
	msg  string
}

func (e *opError) Error() string { return e.msg }

func errf(code storewire.Code, format string, args ...any) error {
	return &opError{code: code, msg: fmt.Sprintf(format, args...)}
}

// counters are the Stats figures that are not derived from the table.
type counters struct {
	evictions, evictedBytes, compactions, movedBytes uint64
	// The cold tier's: spills (writes of eviction victims) and restores
	// (reads back for a Get), each ended well or not.
	spills, spilledBytes, spillFailures      uint64
	restores, restoredBytes, restoreFailures uint64
}

// state is the whole store behind one mutex.
type state struct {
	capacity uint64 // -m, as configured and advertised
	mu       sync.Mutex
	mem      []byte // the store's mapping of the arena
	alloc    *alloc.Allocator
	objects  map[storewire.ID]*object
	lru      *btree.BTreeG[*object] // by useSeq: least recently used first
	uses     uint64                 // last useSeq given out
	waiters  waitIndex
	// waitBytes is the memory held by blocked Gets, bounded by waitBudget.
	waitBytes, waitBudget uint64
	subs                  map[*client]struct{}
	clients               int
	pinned                uint64 // bytes of objects that are unsealed or referenced
	n                     counters
	now                   func() time.Time

	// Objects sealed without a digest wait here for the digester, which
	// hashes them in the background (package digest.go).
	digestQ chan digestJob
	hasher  *client // holds the digester's references
	// digestBacklog counts the jobs queued or waiting out digestDelay
	// (plasma_store_digest_backlog).
	digestBacklog atomic.Int64

	cold *coldState // nil without a cold tier (cold.go)
}

func newState(mem []byte, capacity, waitBudget uint64) *state {
	return &state{
		mem: mem,
		// Objects are placed in 64-byte blocks: the allocator manages -m
		// rounded up, so that an object of -m bytes fits.
		alloc:      alloc.New(roundUp(capacity)),
		capacity:   capacity,
		objects:    map[storewire.ID]*object{},
		lru:        btree.NewG(32, func(a, b *object) bool { return a.useSeq < b.useSeq }),
		waiters:    newWaitIndex(),
		waitBudget: waitBudget,
		subs:       map[*client]struct{}{},
		now:        time.Now,
		digestQ:    make(chan digestJob, digestQueue),
		hasher:     newClient(0),
	}
}

func allocSize(data uint64, meta uint32) uint64 {
	if n := data + uint64(meta); n > 0 {
		return n
	}
	return 1
}

// create reserves an object for c and copies its metadata into place.
func (s *state) create(c *client, m *storewire.Create) (storewire.Location, error) {
	if m.DataSize > s.alloc.Capacity() {
		return storewire.Location{}, errf(storewire.CodeOutOfMemory,
			"object %s: data size %d exceeds the store capacity %d", m.ID.String(), m.DataSize, s.alloc.Capacity())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.placeWaiting(c, m.ID, m.DataSize, m.Metadata)
	if err != nil {
		return storewire.Location{}, err
	}
	c.created[o.id] = o
	s.ref(c, o, true)
	return storewire.Location{Offset: o.off, DataSize: o.dataSize, MetaSize: o.metaSize}, nil
}

// place allocates an unsealed object (making room if needed) and writes
// its metadata. Caller holds s.mu.
func (s *state) place(c *client, oid storewire.ID, dataSize uint64, meta []byte) (*object, error) {
	if o, ok := s.objects[oid]; ok {
		what := "sealed"
		switch {
		case !o.sealed:
			what = "being created"
		case o.deletePending:
			what = "pending deletion"
		}
		return nil, errf(storewire.CodeObjectExists, "object %s already exists (%s)", oid.String(), what)
	}
	if s.cold.holds(oid) && c != s.cold.worker {
		return nil, errf(storewire.CodeObjectExists, "object %s already exists (in the cold tier)", oid.String())
	}
	size := allocSize(dataSize, uint32(len(meta)))
	off, err := s.allocate(oid, size)
	if err != nil {
		return nil, err
	}
	o := &object{
		id: oid, off: off, dataSize: dataSize, metaSize: uint32(len(meta)), allocSize: size,
		creator: c, created: s.now(), constructNs: -1, creatorPID: c.pid,
	}
	copy(s.mem[off+dataSize:], meta)
	s.objects[oid] = o
	s.pinned += size
	return o, nil
}

// seal makes c's object immutable and visible, wakes blocked Gets and
// notifies subscribers.
func (s *state) seal(c *client, m *storewire.Seal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[m.ID]
	switch {
	case !ok:
		return errf(storewire.CodeObjectNotFound, "seal: object %s does not exist", m.ID.String())
	case o.sealed:
		return errf(storewire.CodeAlreadySealed, "seal: object %s is already sealed", m.ID.String())
	case o.creator != c:
		return errf(storewire.CodeNotCreator, "seal: object %s was created by another client (pid %d)", m.ID.String(), o.creatorPID)
	}
	o.hasDigest, o.digest = m.HasDigest, m.Digest
	s.sealLocked(o)
	return nil
}

func (s *state) sealLocked(o *object) {
	now := s.now()
	o.sealed = true
	o.constructNs = now.Sub(o.created).Nanoseconds()
	s.used(o, now)
	if o.creator != nil {
		delete(o.creator.created, o.id)
		o.creator = nil
	}
	if o.refs == 0 {
		s.pinned -= o.allocSize
		s.lruInsert(o)
	}
	s.publish(storewire.EventSealed, o)
	s.wake(o)
	if !o.hashed() {
		select {
		case s.digestQ <- digestJob{o, now}:
			s.digestBacklog.Add(1)
		default: // a backlog: readers that need it hash it themselves
		}
	}
}

// createAndSeal stores a small object whole; the client keeps a reference
// only if it asked to (Keep), as after Create and Seal.
func (s *state) createAndSeal(c *client, m *storewire.CreateAndSeal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.placeWaiting(c, m.ID, uint64(len(m.Data)), m.Metadata)
	if err != nil {
		return err
	}
	if m.Keep {
		s.ref(c, o, true)
	}
	copy(s.mem[o.off:], m.Data)
	o.hasDigest, o.digest = m.HasDigest, m.Digest
	s.sealLocked(o)
	return nil
}

// createAndSealBatch stores each object as createAndSeal does, in order,
// and reports each outcome: a failure (an id taken, also by an earlier
// object of the batch; no room) leaves that object out and the others
// stored. The lock is taken per object, so that a large batch does not
// hold other clients up; each object is sealed as it is placed, so none
// is ever visible unsealed, and one the connection never finished sending
// was never decoded.
func (s *state) createAndSealBatch(c *client, objs []storewire.CreateAndSeal) []storewire.BatchResult {
	res := make([]storewire.BatchResult, len(objs))
	for i := range objs {
		if err := s.createAndSeal(c, &objs[i]); err != nil {
			var oe *opError
			if !errors.As(err, &oe) {
				oe = &opError{code: storewire.CodeInternal, msg: err.Error()}
			}
			res[i] = storewire.BatchResult{Code: oe.code, Message: oe.msg}
		}
	}
	return res
}

// abort frees c's unsealed object.
func (s *state) abort(c *client, oid storewire.ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[oid]
	switch {
	case !ok:
		return errf(storewire.CodeObjectNotFound, "abort: object %s does not exist", oid.String())
	case o.sealed:
		return errf(storewire.CodeAlreadySealed, "abort: object %s is already sealed", oid.String())
	case o.creator != c:
		return errf(storewire.CodeNotCreator, "abort: object %s was created by another client (pid %d)", oid.String(), o.creatorPID)
	}
	s.abortLocked(c, o)
	return nil
}

func (s *state) abortLocked(c *client, o *object) {
	delete(c.created, o.id)
	if n := c.refs[o.id]; n > 0 {
		delete(c.refs, o.id)
		o.refs -= n
	}
	if o.refs > 0 {
		// Only the creator can hold a reference to an unsealed object.
		panic(fmt.Sprintf("storeserver: unsealed object %s has %d foreign references", o.id.String(), o.refs))
	}
	s.pinned -= o.allocSize
	s.remove(o)
}

// remove drops an unreferenced object from the table and frees its memory.
func (s *state) remove(o *object) {
	s.lruRemove(o)
	delete(s.objects, o.id)
	if err := s.alloc.Free(o.off); err != nil {
		panic(fmt.Sprintf("storeserver: free of object %s at %d: %v", o.id.String(), o.off, err))
	}
}

// ref gives c one more reference to o. use says whether it counts as a
// use of o: internal reads (hashing, an internal Get serving a copy) do
// not, so o returns to its old LRU position when they release it.
func (s *state) ref(c *client, o *object, use bool) {
	if o.refs == 0 && o.sealed {
		s.pinned += o.allocSize
	}
	s.lruRemove(o)
	o.touched = o.touched || use
	o.refs++
	c.refs[o.id]++
}

// release drops one of c's references to each id (an id listed twice
// drops two).
func (s *state) release(c *client, ids []storewire.ID) []storewire.Code {
	s.mu.Lock()
	defer s.mu.Unlock()
	codes := make([]storewire.Code, len(ids))
	for i, oid := range ids {
		if c.refs[oid] == 0 {
			codes[i] = storewire.CodeNotReferenced
			continue
		}
		s.releaseLocked(c, s.objects[oid], 1)
	}
	return codes
}

func (s *state) releaseLocked(c *client, o *object, n int) {
	if c.refs[o.id] -= n; c.refs[o.id] == 0 {
		delete(c.refs, o.id)
	}
	o.refs -= n
	if o.refs > 0 || !o.sealed {
		return
	}
	s.pinned -= o.allocSize
	if o.deletePending {
		s.publish(storewire.EventDeleted, o)
		s.remove(o)
		return
	}
	if o.touched {
		s.used(o, s.now())
	}
	s.lruInsert(o)
}

// used makes o the most recently used object. It is not on the LRU tree.
func (s *state) used(o *object, now time.Time) {
	s.uses++
	o.useSeq, o.lastUse, o.touched = s.uses, now, false
}

func (s *state) lruInsert(o *object) {
	s.lru.ReplaceOrInsert(o)
	o.onLRU = true
}

func (s *state) lruRemove(o *object) {
	if o.onLRU {
		s.lru.Delete(o)
		o.onLRU = false
	}
}

// contains reports whether oid is sealed and not pending deletion.
func (s *state) contains(oid storewire.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[oid]
	return ok && o.sealed && !o.deletePending || !ok && s.cold.holds(oid)
}

// del deletes each id, deferring those in use to their last release.
func (s *state) del(ids []storewire.ID) []storewire.Code {
	codes, _ := s.deleteIDs(ids)
	return codes
}

// deleteIDs is del; it also returns, by position, the cold-tier records
// of the objects deleted, for the caller to delete there (dropCold).
func (s *state) deleteIDs(ids []storewire.ID) ([]storewire.Code, map[int]coldtier.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	codes := make([]storewire.Code, len(ids))
	var cold map[int]coldtier.Record
	for i, oid := range ids {
		o, ok := s.objects[oid]
		if rec := s.cold.take(oid); rec != nil {
			if cold == nil {
				cold = map[int]coldtier.Record{}
			}
			cold[i] = *rec
			if !ok {
				continue // only the tier held it
			}
		}
		switch {
		case !ok || o.deletePending:
			codes[i] = storewire.CodeObjectNotFound
		case !o.sealed:
			codes[i] = storewire.CodeObjectNotSealed
		case o.refs > 0:
			o.deletePending = true
			codes[i] = storewire.CodeDeleteDeferred
		default:
			s.publish(storewire.EventDeleted, o)
			s.remove(o)
		}
	}
	return codes, cold
}

// disconnect frees c's unsealed objects, drops its references and its
// blocked Gets. It runs however the connection ended.
func (s *state) disconnect(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range c.waits {
		s.cancelWait(w)
	}
	for _, o := range c.created {
		s.abortLocked(c, o)
	}
	for oid, n := range c.refs {
		s.releaseLocked(c, s.objects[oid], n)
	}
	delete(s.subs, c)
	if c.events != nil {
		c.events.close() // publish no longer sees c: it left s.subs above
	}
	s.clients--
}
