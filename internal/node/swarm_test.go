package node

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/streamwire"
)

// The swarm schedule: every target is served, no source ever runs more
// than fanout transfers, finished targets become sources, and a target
// that fails everywhere is reported after at most prefetchAttempts tries.
func TestSwarmSchedule(t *testing.T) {
	for _, fanout := range []int{1, 2, 3} {
		sw := newSwarm([]cluster.Location{{Node: "origin"}}, fanout)
		for i := range 20 {
			sw.queue = append(sw.queue, cluster.Node{Name: fmt.Sprintf("t%02d", i)})
		}
		var mu sync.Mutex
		running := map[string]int{}
		tries := map[string]int{}
		out := sw.run(context.Background(), func(_ context.Context, target cluster.Node, source cluster.Location) streamwire.NodeOutcome {
			mu.Lock()
			running[source.Node]++
			if running[source.Node] > fanout {
				t.Errorf("fanout %d: source %s runs %d transfers", fanout, source.Node, running[source.Node])
			}
			tries[target.Name]++
			mu.Unlock()
			defer func() { mu.Lock(); running[source.Node]--; mu.Unlock() }()
			// t13 fails from every source; the others succeed.
			return streamwire.NodeOutcome{Node: target.Name, Source: source.Node, OK: target.Name != "t13"}
		})
		if len(out) != 20 {
			t.Fatalf("fanout %d: %d outcomes for 20 targets", fanout, len(out))
		}
		sources := map[string]bool{}
		for _, o := range out {
			if o.Node == "t13" {
				if o.OK || tries["t13"] != prefetchAttempts {
					t.Fatalf("fanout %d: the failing target: %+v after %d tries", fanout, o, tries["t13"])
				}
				continue
			}
			if !o.OK {
				t.Fatalf("fanout %d: %+v", fanout, o)
			}
			sources[o.Source] = true
		}
		if len(sources) < 4 {
			t.Fatalf("fanout %d: only %d distinct sources: finished targets are not serving", fanout, len(sources))
		}
	}
}
