package transfer

import (
	"context"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/store"
)

// Inflight lets a server relay an object while it is still receiving it
// (cut-through): a RELAY request for an object that is arriving is served
// from the receive buffer as its groups are verified here (as its bytes
// land, for an object sent without an outboard). Chains of relays make a
// broadcast take about the time of one transfer instead of one per hop.
//
// Safety: the receiving side keeps its reference to the object (so that its
// memory cannot be reused) until every relay reading it has finished; a
// relay whose source fails closes its connection before the end of the
// data, so its receiver never seals what it got.
type Inflight struct {
	mu      sync.Mutex
	changed *sync.Cond
	objects map[streamwire.ID]*arriving
}

// NewInflight makes an empty registry.
func NewInflight() *Inflight {
	f := &Inflight{objects: map[streamwire.ID]*arriving{}}
	f.changed = sync.NewCond(&f.mu)
	return f
}

// arriving is an object being received. Fields other than buf and meta
// are guarded by the registry's mutex.
type arriving struct {
	buf, meta, outboard []byte
	digest              [32]byte
	received            int // bytes that may be forwarded
	done, ok            bool
	readers             int
	release             func() // set when the receiver has sealed: run by the last reader
}

// start registers an object whose bytes will land in buf.
func (f *Inflight) start(id streamwire.ID, buf, meta []byte, digest [32]byte, outboard []byte) *arriving {
	if f == nil {
		return nil
	}
	a := &arriving{buf: buf, meta: meta, digest: digest, outboard: outboard}
	f.mu.Lock()
	f.objects[id] = a
	f.changed.Broadcast()
	f.mu.Unlock()
	return a
}

// progress records that buf[:n] may be forwarded.
func (f *Inflight) progress(a *arriving, n int) {
	if a == nil {
		return
	}
	f.mu.Lock()
	a.received = n
	f.changed.Broadcast()
	f.mu.Unlock()
}

// finish records the outcome and hands the receiver's store reference to
// the relays still reading (release runs when the last one ends; at once
// when there is none). The object leaves the registry: later requests find
// it in the store.
func (f *Inflight) finish(id streamwire.ID, a *arriving, ok bool, release func()) {
	if a == nil {
		release()
		return
	}
	f.mu.Lock()
	a.done, a.ok = true, ok
	if f.objects[id] == a {
		delete(f.objects, id)
	}
	f.changed.Broadcast()
	if a.readers > 0 {
		a.release = release
		release = nil
	}
	f.mu.Unlock()
	if release != nil {
		release()
	}
}

// wait returns the arriving object id, waiting up to d for its transfer to
// start; nil if it did not (the caller then looks in the store).
func (f *Inflight) wait(ctx context.Context, st *store.Client, id streamwire.ID, d time.Duration) *arriving {
	if f == nil {
		return nil
	}
	deadline := time.Now().Add(d)
	stop := context.AfterFunc(ctx, func() { f.mu.Lock(); f.changed.Broadcast(); f.mu.Unlock() })
	defer stop()
	timer := time.AfterFunc(d, func() { f.mu.Lock(); f.changed.Broadcast(); f.mu.Unlock() })
	defer timer.Stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if a := f.objects[id]; a != nil {
			a.readers++
			return a
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil
		}
		// Already sealed here (arrived before we asked)? Check without
		// the lock: Contains is a store round trip.
		f.mu.Unlock()
		ok, err := st.Contains(ctx, id)
		f.mu.Lock()
		if err == nil && ok {
			return nil
		}
		if f.objects[id] == nil {
			f.changed.Wait()
		}
	}
}

// next waits until more than sent bytes of a may be forwarded or it is
// done, and returns the new total and whether it is done (and ok).
func (f *Inflight) next(ctx context.Context, a *arriving, sent int) (received int, done, ok bool) {
	stop := context.AfterFunc(ctx, func() { f.mu.Lock(); f.changed.Broadcast(); f.mu.Unlock() })
	defer stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for a.received <= sent && !a.done && ctx.Err() == nil {
		f.changed.Wait()
	}
	return a.received, a.done, a.ok
}

// leave ends a relay's reading; the last one out runs the receiver's
// deferred release.
func (f *Inflight) leave(a *arriving) {
	f.mu.Lock()
	a.readers--
	var release func()
	if a.readers == 0 && a.release != nil {
		release, a.release = a.release, nil
	}
	f.mu.Unlock()
	if release != nil {
		release()
	}
}
