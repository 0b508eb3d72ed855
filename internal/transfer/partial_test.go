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
