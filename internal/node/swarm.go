package node

import (
	"context"
	"fmt"

	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/streamwire"
)

// prefetchAttempts is the sources tried per target before it is reported
// failed.
const prefetchAttempts = 3

// swarm schedules transfers: targets wait in queue; each source has at
// most fanout transfers running; a finished target joins the sources.
type swarm struct {
	sources []cluster.Location
	busy    map[string]int // source node -> running transfers
	holds   map[string]bool
	queue   []cluster.Node
	tried   map[string]map[string]bool // target -> sources tried
	fanout  int
}

func newSwarm(holders []cluster.Location, fanout int) *swarm {
	sw := &swarm{busy: map[string]int{}, holds: map[string]bool{}, tried: map[string]map[string]bool{}, fanout: fanout}
	for _, h := range holders {
		if !sw.holds[h.Node] {
			sw.holds[h.Node] = true
			sw.sources = append(sw.sources, h)
		}
	}
	return sw
}

type swarmResult struct {
	target cluster.Node
	source cluster.Location
	out    streamwire.NodeOutcome
}

func (sw *swarm) run(ctx context.Context, copyTo func(context.Context, cluster.Node, cluster.Location) streamwire.NodeOutcome) []streamwire.NodeOutcome {
	results := make(chan swarmResult)
	var out []streamwire.NodeOutcome
	running := 0
	for len(sw.queue) > 0 || running > 0 {
		// Start every queued target that has a free source it has not
		// tried (not only the head of the queue: it may wait for a busy
		// source while others need a free one).
		waiting := sw.queue[:0]
		for _, target := range sw.queue {
			src, ok := sw.pickSource(target.Name)
			if !ok {
				waiting = append(waiting, target)
				continue
			}
			sw.busy[src.Node]++
			sw.tried[target.Name][src.Node] = true
			running++
			go func() { results <- swarmResult{target, src, copyTo(ctx, target, src)} }()
		}
		sw.queue = waiting
		if running == 0 { // targets left but no source they have not tried
			for _, t := range sw.queue {
				out = append(out, streamwire.NodeOutcome{Node: t.Name, Address: t.Address, Status: streamwire.StatusPeerUnreachable.String(),
					Message: fmt.Sprintf("node %s: every source failed", t.Name)})
			}
			break
		}
		r := <-results
		running--
		sw.busy[r.source.Node]--
		switch {
		case r.out.OK:
			out = append(out, r.out)
			sw.holds[r.target.Name] = true
			sw.sources = append(sw.sources, cluster.Location{Node: r.target.Name, Address: r.target.Address})
		case len(sw.tried[r.target.Name]) < prefetchAttempts && len(sw.tried[r.target.Name]) < len(sw.sources) && ctx.Err() == nil:
			sw.queue = append(sw.queue, r.target) // another source next time
		default:
			out = append(out, r.out)
		}
	}
	return out
}

// pickSource is the least busy source with a free slot that target has not
// tried yet.
func (sw *swarm) pickSource(target string) (cluster.Location, bool) {
	if sw.tried[target] == nil {
		sw.tried[target] = map[string]bool{}
	}
	best, found := cluster.Location{}, false
	for _, src := range sw.sources {
		if sw.busy[src.Node] >= sw.fanout || sw.tried[target][src.Node] {
			continue
		}
		if !found || sw.busy[src.Node] < sw.busy[best.Node] {
			best, found = src, true
		}
	}
	return best, found
}
