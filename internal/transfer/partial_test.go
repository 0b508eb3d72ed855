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
