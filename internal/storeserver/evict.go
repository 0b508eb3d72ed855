package storeserver

import (
	"sort"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// allocate finds room for size bytes. When the allocator has no block big
// enough it first compacts (if enough bytes are free but scattered), then
// evicts least recently used objects one at a time, compacting again
// whenever the free bytes suffice but are not contiguous. It fails only
// when the pinned objects (unsealed or referenced) leave no room; the error
// says so with the figures. Caller holds s.mu.
func (s *state) allocate(oid storewire.ID, size uint64) (uint64, error) {
	if off, ok := s.alloc.Alloc(size); ok {
		return off, nil
	}
	for {
		if s.alloc.FreeBytes() >= roundUp(size) && s.alloc.LargestFree() < roundUp(size) {
			s.compact()
		}
		if off, ok := s.alloc.Alloc(size); ok {
			return off, nil
		}
		if err := s.makingRoom(size); err != nil {
			return 0, err // spills in flight will make the room
		}
		if s.lru.Len() == 0 {
			return 0, errf(storewire.CodeOutOfMemory,
				"store full: object %s needs %d bytes; capacity %d, %d in use or unsealed, %d free, largest free block %d",
				oid.String(), size, s.alloc.Capacity(), s.pinned, s.alloc.FreeBytes(), s.alloc.LargestFree())
		}
		s.evictOne()
	}
}

func roundUp(n uint64) uint64 { return (n + 63) &^ 63 }

// evictOne removes the least recently used unreferenced sealed object and
// returns the bytes of object data and metadata it held (0 for an empty
// object, whose allocation is nominally one byte); or, with a cold tier
// that lacks the object, starts writing it there, frees nothing yet and
// reports spilling.
func (s *state) evictOne() (freed uint64, spilling bool) {
	o, _ := s.lru.Min()
	if s.startSpill(o) {
		return 0, true
	}
	s.n.evictions++
	s.n.evictedBytes += o.allocSize
	s.publish(storewire.EventEvicted, o)
	s.remove(o)
	return o.dataSize + uint64(o.metaSize), false
}

// evict evicts least recently used objects until their data and metadata
// add up to at least n bytes, or nothing evictable is left, and returns
// that sum. Empty objects add nothing, so eviction goes on past them (as
// pyarrow's plasma store did): Evict(1) with empty objects first in line
// evicts them and the next non-empty one.
func (s *state) evict(n uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var freed uint64
	for freed < n && (s.lru.Len() > 0 || s.cold != nil && s.cold.spilling > 0) {
		if s.lru.Len() == 0 {
			s.waitSpill()
			continue
		}
		f, spilling := s.evictOne()
		if spilling {
			s.waitSpill() // then the object is evicted, with its copy in the tier or without
		}
		freed += f
	}
	return freed
}

// compact slides every movable object (sealed, unreferenced: nobody holds a
// view of it) down to the lowest free address that fits, in address order,
// so free space gathers between and above the pinned objects instead of
// being scattered. Freeing an object and re-allocating lowest-first always
// yields an offset at or below the old one, and copy has memmove semantics,
// so overlapping moves are safe. Caller holds s.mu.
func (s *state) compact() {
	movable := make([]*object, 0, s.lru.Len())
	s.lru.Ascend(func(o *object) bool {
		movable = append(movable, o)
		return true
	})
	sort.Slice(movable, func(i, j int) bool { return movable[i].off < movable[j].off })
	s.n.compactions++
	for _, o := range movable {
		if err := s.alloc.Free(o.off); err != nil {
			panic("storeserver: compaction free: " + err.Error())
		}
		off, ok := s.alloc.AllocLowest(o.allocSize)
		if !ok || off > o.off {
			panic("storeserver: compaction could not re-place an object at or below its offset")
		}
		if off != o.off {
			n := o.dataSize + uint64(o.metaSize)
			copy(s.mem[off:off+n], s.mem[o.off:o.off+n])
			s.n.movedBytes += n
			o.off = off
		}
	}
}

// publish queues an event for every subscriber (a digest event only for
// those that asked for them; the object's info only for those that asked
// for it). A subscriber whose queue is full is dropped rather than
// allowed to stall the store.
func (s *state) publish(kind uint8, o *object) {
	if len(s.subs) == 0 {
		return
	}
	ev := s.event(kind, o, false)
	var withInfo storewire.Event
	for c := range s.subs {
		if kind == storewire.EventDigest && !c.digests {
			continue
		}
		e := ev
		if c.info {
			if withInfo.Info == nil {
				withInfo = s.event(kind, o, true)
			}
			e = withInfo
		}
		if !c.events.push(e) {
			delete(s.subs, c)
			go c.drop()
		}
	}
}

// event is o's event of kind, with its info (a copy of its metadata)
// if info.
func (s *state) event(kind uint8, o *object, info bool) storewire.Event {
	ev := storewire.Event{Kind: kind, ID: o.id, DataSize: o.dataSize, MetaSize: o.metaSize, TimeNs: s.now().UnixNano(),
		HasDigest: o.hasDigest, Digest: o.digest}
	if info {
		meta := o.off + o.dataSize
		ev.Info = &storewire.EventInfo{CreateTimeNs: o.created.UnixNano(), ConstructNs: o.constructNs, CreatorPID: o.creatorPID,
			Metadata: append([]byte(nil), s.mem[meta:meta+uint64(o.metaSize)]...)}
	}
	return ev
}

// subscribe makes c a subscriber with a queue of n events, of digest
// events too if flags ask for them, of events with info if they ask for
// it. With SubscribeSnapshot the queue starts with an EventPresent for
// every sealed object and EventSnapshotEnd, taken under the lock that
// orders every later event after them (the snapshot may exceed n: it is
// the store's table, already in memory once).
func (s *state) subscribe(c *client, n int, flags uint32) *eventQueue {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.events != nil {
		return c.events
	}
	c.events = newEventQueue(n)
	c.digests = flags&storewire.SubscribeDigests != 0
	c.info = flags&storewire.SubscribeInfo != 0
	c.cold = flags&storewire.SubscribeCold != 0
	if flags&storewire.SubscribeSnapshot != 0 {
		for _, o := range s.objects {
			if o.sealed {
				c.events.add(s.event(storewire.EventPresent, o, c.info))
			}
		}
		c.events.add(storewire.Event{Kind: storewire.EventSnapshotEnd, TimeNs: s.now().UnixNano()})
	}
	s.subs[c] = struct{}{}
	return c.events
}

// list describes every object, sealed or not, in offset order.
func (s *state) list() []storewire.Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]storewire.Info, 0, len(s.objects))
	for _, o := range s.objects {
		st := storewire.StateCreated
		switch {
		case o.sealed && s.cold.holds(o.id):
			st = storewire.StateSealedCold
		case o.sealed:
			st = storewire.StateSealed
		}
		var last int64
		if !o.lastUse.IsZero() {
			last = o.lastUse.UnixNano()
		}
		out = append(out, storewire.Info{
			ID: o.id, DataSize: o.dataSize, MetaSize: o.metaSize, RefCount: uint32(o.refs),
			CreateTimeNs: o.created.UnixNano(), ConstructNs: o.constructNs, CreatorPID: o.creatorPID,
			State: st, DeletePending: o.deletePending, HasDigest: o.hasDigest, Digest: o.digest,
			LastUseUnixNs: last, Offset: o.off,
		})
	}
	out = s.coldInfos(out)
	sort.Slice(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	return out
}

func (s *state) stats() storewire.StatsReply {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sealed uint64
	for _, o := range s.objects {
		if o.sealed {
			sealed++
		}
	}
	return storewire.StatsReply{
		Capacity: s.capacity, Used: s.alloc.Used(), Objects: uint64(len(s.objects)),
		Sealed: sealed, Pinned: s.pinned, LargestFree: s.alloc.LargestFree(),
		FreeBlocks: uint64(s.alloc.FreeBlocks()), Evictions: s.n.evictions,
		EvictedBytes: s.n.evictedBytes, Compactions: s.n.compactions,
		MovedBytes: s.n.movedBytes, Clients: uint64(s.clients),
	}
}
