package storeserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/coldtier"
	"github.com/plasmastream/plasmastream/internal/storewire"
)

// coldState is the store's view of its cold tier (-e). All its fields but
// the immutable ones are guarded by state.mu; its I/O runs without it.
//
// Invariants:
//   - entries holds every object the tier is known to hold; an object in
//     memory with an entry has a complete copy there (evicting it frees
//     its memory and loses nothing);
//   - an object being written to the tier is referenced by worker, so it
//     is neither evicted nor moved while its bytes are read, and counted
//     in spilling until the write ends;
//   - an object being restored is an unsealed object created by worker,
//     invisible to Get until every group has verified and it is sealed.
type coldState struct {
	tier    coldtier.Tier
	log     *slog.Logger
	timeout time.Duration // bounds each spill, persist, restore and delete
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // spills and restores in flight (they read and write the arena)
	// spillSem and restoreSem bound the writes and the restores in flight;
	// two, so that restores waiting for room never hold up the spills
	// that make it.
	spillSem, restoreSem chan struct{}
	partSize             uint64
	concurrency          int

	entries  map[storewire.ID]*coldEntry
	worker   *client       // holds spills' references and restores' unsealed objects
	spilling uint64        // bytes of objects being written because memory was needed
	progress chan struct{} // closed and replaced whenever a spill ends
	// downUntil: a spill failed; until then victims are evicted without
	// one, so that a dead or hung tier costs each Create at most one
	// failed write, not one per victim.
	downUntil time.Time
	// shared (--cold-shared): other stores write to the tier, so a Get of
	// an id unknown here asks the tier (looking: asks in flight; missed:
	// recent answers "none").
	shared  bool
	looking map[storewire.ID]struct{}
	missed  map[storewire.ID]time.Time
}

// spillBackoff is how long the store evicts without spilling after a
// spill failed.
const spillBackoff = 5 * time.Second

type coldEntry struct {
	rec       coldtier.Record
	restoring bool
}

// openCold opens the tier and learns what it holds.
func openCold(cfg *Config) (*coldState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ColdTimeout)
	defer cancel()
	tier, err := coldtier.Open(ctx, cfg.Cold)
	if err != nil {
		return nil, err
	}
	recs, bad, err := tier.Records(ctx)
	if err != nil {
		return nil, fmt.Errorf("cold tier %s: list its objects: %w", tier, err)
	}
	log := cfg.Logger.With("component", "cold", "cold_tier", tier.String())
	for _, e := range bad {
		log.Warn("cold tier: ignoring an unreadable record", "err", e)
	}
	c := cfg.Cold
	c.SetDefaults()
	cs := &coldState{
		tier: tier, log: log, timeout: cfg.ColdTimeout,
		spillSem: make(chan struct{}, c.Concurrency), restoreSem: make(chan struct{}, c.Concurrency),
		partSize: c.PartSize, concurrency: c.Concurrency,
		entries: make(map[storewire.ID]*coldEntry, len(recs)), worker: newClient(0), progress: make(chan struct{}),
		shared: cfg.ColdShared, looking: map[storewire.ID]struct{}{}, missed: map[storewire.ID]time.Time{},
	}
	cs.ctx, cs.cancel = context.WithCancel(context.Background())
	for _, r := range recs {
		cs.entries[r.ID] = &coldEntry{rec: r}
	}
	log.Info("cold tier open", "objects", len(recs))
	return cs, nil
}

// cancelIO ends the tier's I/O in flight and any to come, so that no
// connection waits for it: the store is stopping.
func (cs *coldState) cancelIO() {
	if cs != nil {
		cs.cancel()
	}
}

// stop cancels the tier's I/O and waits for it: the arena is released
// after.
func (cs *coldState) stop() {
	if cs != nil {
		cs.cancel()
		cs.wg.Wait()
	}
}

// holds reports whether the tier holds oid.
func (cs *coldState) holds(oid storewire.ID) bool {
	return cs != nil && cs.entries[oid] != nil
}

// spillWait is place's answer when room is being made by spills in
// flight: wait for ch and try again.
type spillWait struct{ ch <-chan struct{} }

func (*spillWait) Error() string { return "waiting for objects to be written to the cold tier" }

// placeWaiting is place, waiting (without s.mu) for spills in flight when
// they are what makes room. Each spill ends within the tier timeout, so
// the wait does too. Caller holds s.mu.
func (s *state) placeWaiting(c *client, oid storewire.ID, dataSize uint64, meta []byte) (*object, error) {
	for {
		o, err := s.place(c, oid, dataSize, meta)
		var w *spillWait
		if !errors.As(err, &w) {
			return o, err
		}
		s.mu.Unlock()
		<-w.ch
		s.mu.Lock()
	}
}

// makingRoom reports, when spills in flight will free what size needs
// (or all that can be freed), the channel to wait on. Caller holds s.mu.
func (s *state) makingRoom(size uint64) error {
	cs := s.cold
	if cs == nil || cs.spilling == 0 {
		return nil
	}
	if s.alloc.FreeBytes()+cs.spilling >= roundUp(size) || s.lru.Len() == 0 {
		return &spillWait{cs.progress}
	}
	return nil
}

// startSpill begins writing o, the eviction victim, to the tier unless it
// is there already or its write failed before; it reports whether it did.
// o stays pinned (off the LRU tree) until the write ends; then a copy in
// the tier makes it free to evict, and a failure marks it to be evicted
// without one. Caller holds s.mu.
func (s *state) startSpill(o *object) bool {
	cs := s.cold
	if cs == nil || cs.entries[o.id] != nil || o.spillFailed || time.Now().Before(cs.downUntil) {
		return false
	}
	s.ref(cs.worker, o, false)
	cs.spilling += o.allocSize
	cs.wg.Add(1)
	go func() {
		defer cs.wg.Done()
		cs.spillSem <- struct{}{}
		err := s.writeCold(o, false)
		<-cs.spillSem
		s.mu.Lock()
		defer s.mu.Unlock()
		cs.spilling -= o.allocSize
		switch {
		case err == nil:
			s.n.spills++
			s.n.spilledBytes += o.dataSize + uint64(o.metaSize)
		case !errors.Is(err, errDeletedWhileWriting):
			s.n.spillFailures++
		}
		if err != nil {
			o.spillFailed = true
			if !errors.Is(err, errDeletedWhileWriting) {
				cs.downUntil = time.Now().Add(spillBackoff)
			}
			cs.log.Warn("spill failed: the object will be evicted without a copy (it was not persisted)", "err", err)
		}
		s.releaseLocked(cs.worker, o, 1)
		close(cs.progress)
		cs.progress = make(chan struct{})
	}()
	return true
}

// waitSpill waits (without s.mu) for the next spill to end. Caller holds
// s.mu.
func (s *state) waitSpill() {
	ch := s.cold.progress
	s.mu.Unlock()
	<-ch
	s.mu.Lock()
}

var errDeletedWhileWriting = errors.New("deleted while being written to the cold tier")

// writeCold writes o, which the caller references, to the tier: data and
// outboard unless the tier has them (same digest, same bytes), then the
// record. On success o has an entry, unless it was deleted meanwhile (then
// what was written is deleted again). Called without s.mu.
func (s *state) writeCold(o *object, persist bool) error {
	cs := s.cold
	s.mu.Lock()
	s.hashLocked(o) // the digest names the blob; the outboard goes beside it
	rec := coldtier.Record{ID: o.id, Digest: o.digest, DataSize: o.dataSize, CreatedNs: o.created.UnixNano(), Persisted: persist,
		Metadata: slices.Clone(s.mem[o.off+o.dataSize : o.off+o.dataSize+uint64(o.metaSize)])}
	outboard := o.outboard
	if outboard == nil {
		outboard = binary.LittleEndian.AppendUint64(nil, o.dataSize)
	}
	data := s.mem[o.off : o.off+o.dataSize] // referenced: never moved
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(cs.ctx, cs.timeout)
	defer cancel()
	have, err := cs.tier.HasBlob(ctx, rec.Digest, rec.DataSize)
	if err == nil && !have {
		err = cs.tier.PutBlob(ctx, rec.Digest, data, outboard)
	}
	if err == nil {
		err = cs.tier.PutRecord(ctx, rec)
	}
	if err != nil {
		return fmt.Errorf("object %s (%d bytes): cold tier %s: %w", o.id.String(), rec.DataSize, cs.tier, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.objects[o.id] != o || o.deletePending {
		s.dropColdAsync(rec)
		return fmt.Errorf("object %s: %w", o.id.String(), errDeletedWhileWriting)
	}
	if e := cs.entries[o.id]; e != nil && e.rec.Persisted {
		rec.Persisted = true
	}
	cs.entries[o.id] = &coldEntry{rec: rec}
	s.publishCold(storewire.EventCold, rec)
	return nil
}

// persist writes each object to the tier now (an object already there is
// marked persisted). It runs on the requesting connection's goroutine, so
// only that client waits for the tier.
func (s *state) persist(ids []storewire.ID) ([]storewire.Code, error) {
	cs := s.cold
	if cs == nil {
		return nil, errf(storewire.CodeInvalidRequest, "persist: this store has no cold tier; start it with -e file:///dir or -e s3://bucket/prefix")
	}
	codes := make([]storewire.Code, len(ids))
	for i, oid := range ids {
		var err error
		codes[i], err = s.persistOne(oid)
		if err != nil {
			return nil, errf(storewire.CodeColdTier, "persist: %v; the object is still in memory, not persisted", err)
		}
	}
	return codes, nil
}

func (s *state) persistOne(oid storewire.ID) (storewire.Code, error) {
	cs := s.cold
	s.mu.Lock()
	o, ok := s.objects[oid]
	e := cs.entries[oid]
	switch {
	case e != nil && e.rec.Persisted:
		s.mu.Unlock()
		return storewire.CodeOK, nil
	case e != nil && !e.restoring:
		rec := e.rec
		rec.Persisted = true
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(cs.ctx, cs.timeout)
		defer cancel()
		if err := cs.tier.PutRecord(ctx, rec); err != nil {
			return 0, fmt.Errorf("object %s: cold tier %s: %w", oid.String(), cs.tier, err)
		}
		s.mu.Lock()
		if cs.entries[oid] == e {
			e.rec.Persisted = true
		}
		s.mu.Unlock()
		return storewire.CodeOK, nil
	case !ok || o.deletePending:
		s.mu.Unlock()
		return storewire.CodeObjectNotFound, nil
	case !o.sealed:
		s.mu.Unlock()
		return storewire.CodeObjectNotSealed, nil
	}
	s.ref(cs.worker, o, false)
	s.mu.Unlock()
	err := s.writeCold(o, true)
	s.mu.Lock()
	s.releaseLocked(cs.worker, o, 1)
	s.mu.Unlock()
	return storewire.CodeOK, err
}

// takeCold forgets oid's copy in the tier, unless it is being restored,
// and returns its record for the caller to delete. Caller holds s.mu.
func (cs *coldState) take(oid storewire.ID) *coldtier.Record {
	if cs == nil {
		return nil
	}
	e := cs.entries[oid]
	if e == nil || e.restoring {
		return nil
	}
	delete(cs.entries, oid)
	return &e.rec
}

// dropCold deletes the records of deleted objects from the tier, and
// their blobs unless another object the store knows has the same bytes.
// A failure sets the object's status to CodeColdTier. Called without s.mu.
func (s *state) dropCold(recs map[int]coldtier.Record, codes []storewire.Code) {
	for i, rec := range recs {
		if err := s.deleteCold(rec); err != nil {
			s.cold.log.Warn("delete from the cold tier failed: the copy remains there", "id", rec.ID.String(), "err", err)
			codes[i] = storewire.CodeColdTier
		}
	}
}

func (s *state) deleteCold(rec coldtier.Record) error {
	cs := s.cold
	ctx, cancel := context.WithTimeout(cs.ctx, cs.timeout)
	defer cancel()
	if err := cs.tier.DeleteRecord(ctx, rec.ID); err != nil {
		return err
	}
	s.mu.Lock()
	s.publishCold(storewire.EventColdDeleted, rec)
	shared := false
	for _, e := range cs.entries {
		shared = shared || e.rec.Digest == rec.Digest
	}
	s.mu.Unlock()
	if shared {
		return nil
	}
	return cs.tier.DeleteBlob(ctx, rec.Digest)
}

// dropColdAsync deletes rec from the tier in the background. Caller holds
// s.mu.
func (s *state) dropColdAsync(rec coldtier.Record) {
	s.cold.wg.Add(1)
	go func() {
		defer s.cold.wg.Done()
		if err := s.deleteCold(rec); err != nil {
			s.cold.log.Warn("delete from the cold tier failed: the copy remains there", "id", rec.ID.String(), "err", err)
		}
	}()
}

// coldInfos describes the objects only the tier holds. Caller holds s.mu.
func (s *state) coldInfos(out []storewire.Info) []storewire.Info {
	if s.cold == nil {
		return out
	}
	for id, e := range s.cold.entries {
		if _, ok := s.objects[id]; ok {
			continue
		}
		out = append(out, storewire.Info{ID: id, DataSize: e.rec.DataSize, MetaSize: uint32(len(e.rec.Metadata)),
			CreateTimeNs: e.rec.CreatedNs, ConstructNs: -1, State: storewire.StateCold, HasDigest: true, Digest: e.rec.Digest})
	}
	return out
}

// groupsOf is the byte count of whole 16 KiB groups nearest below n, at
// least one group: restores read in such chunks so each verifies alone.
func groupsOf(n uint64) uint64 { return max(n/bao.GroupSize, 1) * bao.GroupSize }
