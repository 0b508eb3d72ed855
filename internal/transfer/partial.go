package transfer

import (
	"context"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/streamwire"
)

// Partials are the objects this server is receiving as ranges. Every
// 16 KiB group becomes servable to other nodes the moment it is verified,
// so a node serves the parts it has before it has the whole object; and a
// fetch that fails leaves its verified groups here for a while, so the
// next fetch of the object resumes where it stopped instead of starting
// again.
//
// Safety: the store object stays created (unsealed, invisible to store
// clients) while it is here; RANGE readers hold it, and the release or
// abort runs only once the last of them is done.
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

// Partial is one object being received. buf, meta and tree are fixed; the
// rest is guarded by the registry's mutex.
type Partial struct {
	ID   streamwire.ID
	Tree *bao.Tree
	Buf  []byte
	Meta []byte

	have    []uint64 // bitset of verified groups
	kept    bool     // counted in the registry's kept bytes
	missing int
	active  bool          // a fetch is filling it
	ended   bool          // sealed or aborted: no group will come any more
	wake    chan struct{} // closed and replaced when groups arrive or the state changes
	readers int
	end     func() // release or abort, run once no reader is left
	abort   func() // set while suspended: discards the object
	timer   *time.Timer
}

// Acquire returns the partial object id for a fetch to continue, marked
// active, or nil if there is none (or another fetch is filling it: busy).
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

func (p *Partial) size() uint64 { return uint64(len(p.Buf) + len(p.Meta)) }

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

// Add registers an object a fetch has just created in the store, active.
func (ps *Partials) Add(id streamwire.ID, tree *bao.Tree, buf, meta []byte) *Partial {
	p := &Partial{ID: id, Tree: tree, Buf: buf, Meta: meta, have: make([]uint64, (tree.Groups()+63)/64),
		missing: tree.Groups(), active: true, wake: make(chan struct{})}
	ps.mu.Lock()
	ps.objects[id] = p
	close(ps.appear)
	ps.appear = make(chan struct{})
	ps.mu.Unlock()
	return p
}

// Missing lists the groups not verified yet.
func (ps *Partials) Missing(p *Partial) []int { return ps.MissingIn(p, 0, p.Tree.Groups()-1) }

// MissingIn lists the groups in [first, last] not verified yet.
func (ps *Partials) MissingIn(p *Partial, first, last int) []int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var out []int
	for g := first; g <= last; g++ {
		if p.have[g/64]&(1<<(g%64)) == 0 {
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
		if p.have[g/64]&(1<<(g%64)) == 0 {
			p.have[g/64] |= 1 << (g % 64)
			p.missing--
		}
	}
	p.wakeLocked()
	return p.missing
}

func (p *Partial) wakeLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// Finish removes a sealed object; release runs once no RANGE reads it
// (before Finish returns if none does).
func (ps *Partials) Finish(p *Partial, release func()) { ps.end(p, release) }

// Suspend ends a failed fetch: the object stays for the next fetch to
// resume (abort runs after the registry's keep time unless one does) and
// Suspend reports true; or, when nothing is kept or the objects kept would
// exceed their bytes, it is aborted now and Suspend reports false.
func (ps *Partials) Suspend(p *Partial, abort func()) bool {
	ps.mu.Lock()
	if ps.keep <= 0 || ps.maxKept > 0 && ps.kept+p.size() > ps.maxKept {
		now := ps.endLocked(p, abort)
		ps.mu.Unlock()
		if now {
			abort()
		}
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

// Busy reports whether a fetch here is filling object id now.
func (ps *Partials) Busy(id streamwire.ID) bool {
	if ps == nil {
		return false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.objects[id]
	return p != nil && p.active
}

// Discard aborts the kept partial object id, if there is one that no
// fetch is filling, so that a transfer that cannot resume from it (a
// TAKE, which moves objects whole; a COPY without resumption) can create
// the object afresh. It waits for the RANGE readers still sending its
// verified groups to end (or ctx), and reports whether it discarded one.
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

// Open finds object id for a RANGE reader, waiting up to wait for a fetch
// of it to begin. The caller must call Done.
func (ps *Partials) Open(ctx context.Context, id streamwire.ID, wait time.Duration) *Partial {
	if ps == nil {
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		ps.mu.Lock()
		p, appear := ps.objects[id], ps.appear
		if p != nil {
			p.readers++
		}
		ps.mu.Unlock()
		if p != nil {
			return p
		}
		select {
		case <-appear:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// Done ends a RANGE reader.
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
			all = p.have[g/64]&(1<<(g%64)) != 0
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
