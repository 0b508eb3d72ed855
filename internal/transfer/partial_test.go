package transfer

import (
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/streamwire"
)

func partialOf(t *testing.T, ps *Partials, id byte, size int) *Partial {
	t.Helper()
	data := make([]byte, size)
	outboard, root := bao.Build(data)
	tree, err := bao.Parse(outboard, uint64(size), root)
	if err != nil {
		t.Fatal(err)
	}
	return ps.Add(streamwire.ID{id}, tree, data, nil)
}

// Failed transfers' objects are kept (pinned in the store) only up to the
// registry's byte limit; beyond it they are aborted at once.
func TestPartialsKeepAtMostTheirLimit(t *testing.T) {
	ps := NewPartials(time.Minute, 100<<10)
	aborted := map[byte]bool{}
	abort := func(id byte) func() { return func() { aborted[id] = true } }

	if !ps.Suspend(partialOf(t, ps, 1, 60<<10), abort(1)) || aborted[1] || !ps.Suspended(streamwire.ID{1}) {
		t.Fatal("a failed transfer within the limit was not kept")
	}
	if ps.Suspend(partialOf(t, ps, 2, 60<<10), abort(2)) || !aborted[2] || ps.Suspended(streamwire.ID{2}) {
		t.Fatal("a failed transfer beyond the limit was kept")
	}
	// Resuming the first frees its share of the limit.
	p, busy := ps.Acquire(streamwire.ID{1})
	if p == nil || busy {
		t.Fatal("the kept object cannot be resumed")
	}
	if !ps.Suspend(partialOf(t, ps, 3, 60<<10), abort(3)) {
		t.Fatal("the limit still counts an object being resumed")
	}
	ps.Finish(p, func() {})
	if ps.Suspended(streamwire.ID{1}) || aborted[1] {
		t.Fatal("a finished object is still kept, or was aborted")
	}

	none := NewPartials(0, 0)
	if none.Suspend(partialOf(t, none, 4, 1<<10), abort(4)) || !aborted[4] {
		t.Fatal("kept although keep is 0")
	}
}

// A kept partial object is discarded for a transfer that cannot resume
// from it, once the RANGE readers still sending its groups are done; one
// that a fetch is filling is busy and left alone.
func TestPartialsDiscard(t *testing.T) {
	ps := NewPartials(time.Minute, 0)
	ctx := t.Context()
	if ps.Discard(ctx, streamwire.ID{9}) || ps.Busy(streamwire.ID{9}) {
		t.Fatal("discarded or busy without a partial")
	}
	active := partialOf(t, ps, 1, 32<<10)
	if ps.Discard(ctx, streamwire.ID{1}) || !ps.Busy(streamwire.ID{1}) {
		t.Fatal("a partial being filled was discarded, or is not busy")
	}
	ps.Finish(active, func() {})

	aborted := make(chan struct{})
	ps.Suspend(partialOf(t, ps, 2, 32<<10), func() { close(aborted) })
	reader := ps.Open(ctx, streamwire.ID{2}, 0)
	done := make(chan bool)
	go func() { done <- ps.Discard(ctx, streamwire.ID{2}) }()
	select {
	case <-aborted:
		t.Fatal("aborted under a reader")
	case <-time.After(50 * time.Millisecond):
	}
	ps.Done(reader)
	if !<-done {
		t.Fatal("the kept partial was not discarded")
	}
	<-aborted
	if ps.Suspended(streamwire.ID{2}) {
		t.Fatal("still kept after the discard")
	}
}

// One registry serves every reader of an arriving object: a relay sees
// the verified prefix grow (groups verified out of order count once the
// gap before them fills) and the seal; RANGE serves only objects with an
// outboard; the receiver's release waits for the last reader.
func TestPartialsServeRelayAndRange(t *testing.T) {
	ps := NewPartials(time.Minute, 0)
	ctx := t.Context()
	p := partialOf(t, ps, 1, 5*bao.GroupSize)
	relay := ps.open(ctx, nil, streamwire.ID{1}, 0, func(p *Partial) bool { return p.active })
	rng := ps.Open(ctx, streamwire.ID{1}, 0)
	if relay != p || rng != p {
		t.Fatal("an arriving object is not found by its readers")
	}
	ps.Verified(p, 2, 3)
	ps.Verified(p, 0, 0)
	if prefix, sealed, failed := ps.next(ctx, p, 0); prefix != bao.GroupSize || sealed || failed {
		t.Fatalf("after groups 0, 2, 3: prefix %d sealed %v failed %v", prefix, sealed, failed)
	}
	ps.Verified(p, 1, 1)
	if prefix, _, _ := ps.next(ctx, p, bao.GroupSize); prefix != 4*bao.GroupSize {
		t.Fatalf("after groups 0-3: prefix %d", prefix)
	}
	ps.Verified(p, 4, 4)
	released := make(chan struct{})
	ps.Finish(p, func() { close(released) })
	if prefix, sealed, failed := ps.next(ctx, p, 5*bao.GroupSize); prefix != 5*bao.GroupSize || !sealed || failed {
		t.Fatalf("sealed: prefix %d sealed %v failed %v", prefix, sealed, failed)
	}
	ps.Done(relay)
	select {
	case <-released:
		t.Fatal("released under a reader")
	default:
	}
	ps.Done(rng)
	<-released

	// Without an outboard: relayed, never served by RANGE, never kept.
	q := ps.addWhole(streamwire.ID{2}, [32]byte{}, make([]byte, 3*bao.GroupSize), nil)
	if ps.Open(ctx, streamwire.ID{2}, 0) != nil {
		t.Fatal("RANGE serves an object without an outboard")
	}
	relay = ps.open(ctx, nil, streamwire.ID{2}, 0, func(p *Partial) bool { return p.active })
	aborted := make(chan struct{})
	if relay != q || ps.Suspend(q, func() { close(aborted) }) {
		t.Fatal("an object without an outboard is not relayed, or is kept")
	}
	if _, sealed, failed := ps.next(ctx, q, 0); sealed || !failed {
		t.Fatal("a relay does not see its transfer fail")
	}
	ps.Done(relay)
	<-aborted
}
