package transfer

import (
	"context"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/wire"
	"github.com/plasmastream/plasmastream/store"
)

// Partials is the one registry of the objects this server is receiving
// (by COPY, RELAY, FETCH, PULL or a resumption) and of the verified parts
// of failed transfers it keeps. Other requests read an object here while
// it arrives: RELAY forwards its verified prefix cut-through, RANGE serves
// each 16 KiB group the moment it is verified, so a node serves what it
// has before it has the whole object; and a resumed transfer continues
// from the groups that verified.
//
// Progress is one notion: verified groups (for an object sent without an
// outboard, whose digest is checked only whole, its groups count as they
// land; RANGE does not serve such an object and it is never kept). Every
// progress step or change of state closes the entry's wake channel and
// replaces it; adding an entry does the same with the registry's.
//
// Invariants:
//   - The store object stays created (unsealed, invisible to store
//     clients) while it is here, and its memory stays in place while any
//     reader holds the entry (Open, openRelay ... Done).
//   - The receiver pins the entry by adding it (Add), active. It ends it
//     with Finish once sealed (release: the store reference it hands on),
//     with Suspend when its transfer broke (the entry is kept inactive for
//     a resumption to Acquire, and aborted after the keep time, or at once
//     when nothing is kept or the kept bytes would exceed their limit), or
//     with end (aborted). Release and abort run when the last reader is
//     done, never under one.
//   - An entry leaves the registry when it ends; readers that still hold
//     it see it ended (sealed or not) and stop.
type Partials struct {
	mu      sync.Mutex
	objects map[streamwire.ID]*Partial
	keep    time.Duration
	maxKept uint64 // bytes of failed transfers' objects kept at most (0: no limit)
	kept    uint64
	appear  chan struct{} // closed and replaced whenever an object is added
}

// NewPartials makes an empty registry that keeps an abandoned partial
// object for keep before aborting it, as long as such objects take at
// most maxKept bytes of the store (0: no limit) — they are pinned there.
func NewPartials(keep time.Duration, maxKept uint64) *Partials {
	return &Partials{objects: map[streamwire.ID]*Partial{}, keep: keep, maxKept: maxKept, appear: make(chan struct{})}
}

// Partial is one object being received. The exported fields are fixed;
// the rest is guarded by the registry's mutex.
type Partial struct {
	ID     streamwire.ID
	Tree   *bao.Tree // nil: an object sent without an outboard
	Buf    []byte
	Meta   []byte
	Digest wire.Digest

	have    []uint64 // bitset of verified groups
	missing int
	prefix  int  // groups verified from the first on
	kept    bool // counted in the registry's kept bytes
	active  bool // a transfer is filling it
	ended   bool // sealed or aborted: no group will come any more
	sealed  bool
	wake    chan struct{} // closed and replaced when groups verify or the state changes
	readers int
	end     func() // release or abort, run once no reader is left
	abort   func() // set while suspended: discards the object
	timer   *time.Timer
}

// Add registers an object a transfer has just created in the store and
// verifies against tree, active.
func (ps *Partials) Add(id streamwire.ID, tree *bao.Tree, buf, meta []byte) *Partial {
	return ps.add(&Partial{ID: id, Tree: tree, Buf: buf, Meta: meta, Digest: tree.Root()})
}

// addWhole registers an object without an outboard, whose digest is
// checked whole.
func (ps *Partials) addWhole(id streamwire.ID, digest wire.Digest, buf, meta []byte) *Partial {
	return ps.add(&Partial{ID: id, Buf: buf, Meta: meta, Digest: digest})
}

func (ps *Partials) add(p *Partial) *Partial {
	n := bao.Groups(uint64(len(p.Buf)))
	p.have, p.missing, p.active, p.wake = make([]uint64, (n+63)/64), n, true, make(chan struct{})
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.objects[p.ID] = p
	close(ps.appear)
	ps.appear = make(chan struct{})
	return p
}

// Groups is the number of 16 KiB groups of the object.
func (p *Partial) Groups() int { return bao.Groups(uint64(len(p.Buf))) }

func (p *Partial) size() uint64 { return uint64(len(p.Buf) + len(p.Meta)) }

func (p *Partial) verified(g int) bool { return p.have[g/64]&(1<<(g%64)) != 0 }

func (p *Partial) wakeLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// Acquire returns the partial object id for a fetch to continue, marked
// active, or nil if there is none (or another transfer is filling it:
// busy).
func (ps *Partials) Acquire(id streamwire.ID) (p *Partial, busy bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p = ps.objects[id]
	if p == nil {
		return nil, false
	}
	if p.active {
		return nil, true
	}
	p.active, p.abort = true, nil
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	ps.unkeepLocked(p)
	return p, false
}

// unkeepLocked stops counting p among the kept objects.
func (ps *Partials) unkeepLocked(p *Partial) {
	if p.kept {
		ps.kept -= p.size()
		p.kept = false
	}
}

// Keeps reports whether a failed transfer's verified part is kept at all.
func (ps *Partials) Keeps() bool { return ps != nil && ps.keep > 0 }

// Suspended reports whether the verified part of object id is kept here
// from a transfer that failed, for one to resume.
func (ps *Partials) Suspended(id streamwire.ID) bool {
	if ps == nil {
		return false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.objects[id]
	return p != nil && !p.active
}

// Busy reports whether a transfer here is filling object id now.
func (ps *Partials) Busy(id streamwire.ID) bool {
	if ps == nil {
		return false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.objects[id]
	return p != nil && p.active
}

// Missing lists the groups not verified yet.
func (ps *Partials) Missing(p *Partial) []int { return ps.MissingIn(p, 0, p.Groups()-1) }

// MissingIn lists the groups in [first, last] not verified yet.
func (ps *Partials) MissingIn(p *Partial, first, last int) []int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var out []int
	for g := first; g <= last; g++ {
		if !p.verified(g) {
			out = append(out, g)
		}
	}
	return out
}

// Verified records groups [first, last] as verified and reports how many
// are still missing.
func (ps *Partials) Verified(p *Partial, first, last int) int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for g := first; g <= last; g++ {
		if !p.verified(g) {
			p.have[g/64] |= 1 << (g % 64)
			p.missing--
		}
	}
	for p.prefix < p.Groups() && p.verified(p.prefix) {
		p.prefix++
	}
	p.wakeLocked()
	return p.missing
}

// prefix is how many bytes of p have verified from its start.
func (ps *Partials) prefix(p *Partial) int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return p.prefixBytes()
}

// prefixBytes is prefix, under the registry's lock.
func (p *Partial) prefixBytes() int { return min(p.prefix*bao.GroupSize, len(p.Buf)) }

// verifiedBytes records the bytes [off, off+n) as verified.
func (ps *Partials) verifiedBytes(p *Partial, off, n int) {
	ps.Verified(p, off/bao.GroupSize, (off+max(n, 1)-1)/bao.GroupSize)
}

// Finish ends an object that is sealed; release runs once no reader is
// left (before Finish returns if there is none).
func (ps *Partials) Finish(p *Partial, release func()) {
	ps.mu.Lock()
	p.sealed = true
	now := ps.endLocked(p, release)
	ps.mu.Unlock()
	if now {
		release()
	}
}

// Suspend ends a failed transfer: the object stays for the next one to
// resume (abort runs after the registry's keep time unless one does) and
// Suspend reports true; or, when nothing is kept, the object has no
// outboard or the objects kept would exceed their bytes, it is aborted
// now and Suspend reports false.
func (ps *Partials) Suspend(p *Partial, abort func()) bool {
	ps.mu.Lock()
	if ps.keep <= 0 || p.Tree == nil || ps.maxKept > 0 && ps.kept+p.size() > ps.maxKept {
		ps.mu.Unlock()
		ps.end(p, abort)
		return false
	}
	defer ps.mu.Unlock()
	p.active = false
	p.kept = true
	p.abort = abort
	ps.kept += p.size()
	p.wakeLocked()
	p.timer = time.AfterFunc(ps.keep, func() {
		ps.mu.Lock()
		now := !p.active && !p.ended && ps.objects[p.ID] == p && ps.endLocked(p, abort)
		ps.mu.Unlock()
		if now {
			abort()
		}
	})
	return true
}

// Discard aborts the kept partial object id, if there is one that no
// transfer is filling, so that a transfer that cannot resume from it (a
// TAKE, which moves objects whole; a COPY without resumption) can create
// the object afresh. It waits for the readers still sending its verified
// groups to end (or ctx), and reports whether it discarded one.
func (ps *Partials) Discard(ctx context.Context, id streamwire.ID) bool {
	if ps == nil {
		return false
	}
	ps.mu.Lock()
	p := ps.objects[id]
	if p == nil || p.active || p.abort == nil {
		ps.mu.Unlock()
		return false
	}
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	done := make(chan struct{})
	abort := p.abort
	end := func() { abort(); close(done) }
	now := ps.endLocked(p, end)
	ps.mu.Unlock()
	if now {
		end()
	}
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// end removes p, unsealed; f (the abort) runs once no reader is left.
func (ps *Partials) end(p *Partial, f func()) {
	ps.mu.Lock()
	now := ps.endLocked(p, f)
	ps.mu.Unlock()
	if now {
		f()
	}
}

// endLocked removes p; it reports whether f is to run now (no reader
// left: the caller runs it without the lock), else the last reader runs it.
func (ps *Partials) endLocked(p *Partial, f func()) bool {
	ps.unkeepLocked(p)
	p.ended, p.active = true, false
	if ps.objects[p.ID] == p {
		delete(ps.objects, p.ID)
	}
	p.wakeLocked()
	if p.readers == 0 {
		return true
	}
	p.end = f
	return false
}

// Shutdown stops the timers of abandoned objects (at server shutdown:
// closing the store connection aborts every unsealed object anyway).
func (ps *Partials) Shutdown() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.objects {
		if p.timer != nil {
			p.timer.Stop()
		}
	}
}

// Open finds object id for a RANGE reader, waiting up to wait for a
// transfer of it to begin; only objects with an outboard are served by
// RANGE. The caller must call Done.
func (ps *Partials) Open(ctx context.Context, id streamwire.ID, wait time.Duration) *Partial {
	if ps == nil {
		return nil
	}
	return ps.open(ctx, nil, id, wait, func(p *Partial) bool { return p.Tree != nil })
}

// openRelay finds object id for a RELAY, waiting up to wait for a
// transfer of it to be under way; nil if none is, or the object turned up
// sealed in st (the caller then looks in the store). The caller must call
// Done.
func (ps *Partials) openRelay(ctx context.Context, st *store.Client, id streamwire.ID, wait time.Duration) *Partial {
	return ps.open(ctx, st, id, wait, func(p *Partial) bool { return p.active })
}

// relayPoll is how often a waiting RELAY looks for the object in the
// store: it may be sealed there without passing through the registry (a
// small object, stored whole).
const relayPoll = 20 * time.Millisecond

// open waits up to wait for an entry id that accept takes and pins it for
// a reader. With st, it gives up as soon as st holds the object sealed.
func (ps *Partials) open(ctx context.Context, st *store.Client, id streamwire.ID, wait time.Duration, accept func(*Partial) bool) *Partial {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var poll <-chan time.Time
	if st != nil {
		t := time.NewTicker(relayPoll)
		defer t.Stop()
		poll = t.C
	}
	for {
		ps.mu.Lock()
		p, appear := ps.objects[id], ps.appear
		var wake chan struct{}
		if p != nil {
			if accept(p) {
				p.readers++
				ps.mu.Unlock()
				return p
			}
			wake = p.wake
		}
		ps.mu.Unlock()
		if st != nil {
			if ok, err := st.Contains(ctx, id); err == nil && ok {
				return nil
			}
		}
		select {
		case <-appear:
		case <-wake:
		case <-poll:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// Done ends a reader; the last one out runs the deferred release or abort.
func (ps *Partials) Done(p *Partial) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p.readers--
	if p.readers == 0 && p.end != nil {
		go p.end()
		p.end = nil
	}
}

// WaitGroups blocks until groups [first, last] are all verified; false if
// the object ended or was abandoned without them, or timeout passed
// without a new group arriving.
func (ps *Partials) WaitGroups(ctx context.Context, p *Partial, first, last int, timeout time.Duration) bool {
	for {
		ps.mu.Lock()
		all := true
		for g := first; g <= last && all; g++ {
			all = p.verified(g)
		}
		idle, wake := !p.active, p.wake
		ps.mu.Unlock()
		if all {
			return true
		}
		if idle {
			return false
		}
		select {
		case <-wake:
		case <-time.After(timeout):
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// next waits until more than sent bytes of p have verified from its
// start, or it ended or stopped; it returns the verified prefix in bytes,
// whether p was sealed and whether it ended or stopped unsealed.
func (ps *Partials) next(ctx context.Context, p *Partial, sent int) (prefix int, sealed, failed bool) {
	for {
		ps.mu.Lock()
		prefix = p.prefixBytes()
		sealed, failed = p.sealed, !p.sealed && (p.ended || !p.active)
		wake := p.wake
		ps.mu.Unlock()
		if prefix > sent || sealed || failed {
			return prefix, sealed, failed
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return prefix, false, false
		}
	}
}
