package storeserver

import (
	"encoding/binary"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// waitIndex finds the blocked Gets that may wait for an id. It is keyed by
// the id's first 8 bytes, which keeps an entry at 16 bytes of map slot
// (a Get of 65,536 missing ids once cost 20 MiB in per-id sets). A key is
// a hint, not a match: a waiter checks its own ids (waiter.byID), so ids
// sharing a prefix, by chance or by a client's choice, cost only a
// search. Almost every key has one waiter; the few shared ones live in
// many.
type waitIndex struct {
	one  map[uint64]*waiter
	many map[uint64][]*waiter
	peak int // most keys in one since it was last replaced
}

// A Go map never shrinks: once one held this many keys, it is replaced
// when it empties, so a burst of large Gets does not pin its memory.
const waitIndexShrink = 1024

// waitIndexEntry is the estimated bytes of one key in the index (a map
// slot of 16 bytes at a typical load, with its control byte).
const waitIndexEntry = 32

func newWaitIndex() waitIndex {
	return waitIndex{one: map[uint64]*waiter{}, many: map[uint64][]*waiter{}}
}

func waitKey(i storewire.ID) uint64 { return binary.LittleEndian.Uint64(i[:8]) }

// add registers w under k; the caller adds each (k, w) once.
func (x *waitIndex) add(k uint64, w *waiter) {
	if ws, ok := x.many[k]; ok {
		x.many[k] = append(ws, w)
		return
	}
	if first, ok := x.one[k]; ok {
		delete(x.one, k)
		x.many[k] = []*waiter{first, w}
		return
	}
	x.one[k] = w
	x.peak = max(x.peak, len(x.one))
}

func (x *waitIndex) remove(k uint64, w *waiter) {
	ws, ok := x.many[k]
	if !ok {
		if x.one[k] == w {
			delete(x.one, k)
			if len(x.one) == 0 && x.peak > waitIndexShrink {
				x.one, x.peak = map[uint64]*waiter{}, 0
			}
		}
		return
	}
	for i, v := range ws {
		if v == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 1 {
		delete(x.many, k)
		x.one[k] = ws[0]
		return
	}
	x.many[k] = ws
}

// lookup returns the waiters registered under k, in a slice of its own
// (completing a waiter removes it from the index).
func (x *waitIndex) lookup(k uint64) []*waiter {
	if w, ok := x.one[k]; ok {
		return []*waiter{w}
	}
	return append([]*waiter(nil), x.many[k]...)
}
