package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
)

// defaultFanout is the transfers one source serves at once: with links of
// equal speed, a doubling tree.
const defaultFanout = 1

// prefetch answers PREFETCH. The directory is read before the reply, so
// that its failure (or an object nobody holds) is told even without wait.
func (n *Node) prefetch(ctx context.Context, c *transfer.Conn, m *streamwire.Prefetch) (streamwire.Status, error) {
	plan, err := n.planPrefetch(ctx, m.ID, m.Group)
	var er *streamwire.ErrorReply
	if errors.As(err, &er) {
		return er.Status, c.Send(streamwire.TypeError, er.Append(nil))
	} else if err != nil {
		return n.directoryFailed(c, err, "")
	}
	if m.Wait {
		return replyJSON(c, streamwire.TypePrefetch, n.spread(ctx, m.ID, plan, int(m.Fanout)))
	}
	// The swarm outlives the request: it belongs to the node and ends
	// with ctx, the server's.
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		out := n.spread(ctx, m.ID, plan, int(m.Fanout))
		n.log.Info("prefetch done", "object", fmt.Sprintf("%x", m.ID[:]), "group", m.Group, "nodes", len(out))
	}()
	return replyJSON(c, streamwire.TypePrefetch, []streamwire.NodeOutcome{})
}

// prefetchPlan is what a prefetch reads from the directory: the members
// of the group and the nodes holding the object.
type prefetchPlan struct {
	members []cluster.Node
	holders []cluster.Location
}

// planPrefetch reads the directory for a prefetch of id to group: an
// error if it fails (an *ErrorReply if nobody holds the object).
func (n *Node) planPrefetch(ctx context.Context, id streamwire.ID, group string) (prefetchPlan, error) {
	members, err := n.dir.GroupMembers(ctx, group)
	if err != nil {
		return prefetchPlan{}, err
	}
	holders, err := n.dir.Holders(ctx, id)
	if err != nil {
		return prefetchPlan{}, err
	}
	if n.holdsLocally(ctx, id) {
		holders = append(holders, cluster.Location{Node: n.cfg.Name, Address: n.cfg.Advertise})
	}
	if len(holders) == 0 {
		return prefetchPlan{}, &streamwire.ErrorReply{Status: streamwire.StatusNotFound, Message: fmt.Sprintf("object %x is on no node of the cluster", id[:])}
	}
	return prefetchPlan{members, holders}, nil
}

// spread spreads object id from the nodes that hold it to every live
// member of the group (as planned), as a swarm: each node that finishes
// becomes a source, and no source serves more than fanout transfers at
// once, so the object crosses the network once per member instead of N
// times from the origin. A target that fails is retried from another
// source. The outcome lists every member.
func (n *Node) spread(ctx context.Context, id streamwire.ID, plan prefetchPlan, fanout int) []streamwire.NodeOutcome {
	if fanout <= 0 {
		fanout = defaultFanout
	}
	sw := newSwarm(plan.holders, fanout)
	out := []streamwire.NodeOutcome{}
	for _, m := range plan.members {
		if sw.holds[m.Name] {
			out = append(out, streamwire.NodeOutcome{Node: m.Name, Address: m.Address, Status: streamwire.StatusAlreadyPresent.String(), OK: true})
		} else {
			sw.queue = append(sw.queue, m)
		}
	}
	// First every target at once pulls verified slices from the holders
	// and from each other (see pullAll); then the swarm, store-and-forward
	// from every holder, for those that failed.
	var missed []cluster.Node
	var full, targets []streamwire.PullSource
	for _, h := range sw.sources {
		full = append(full, streamwire.PullSource{Node: h.Node, Addr: h.Address, Full: true})
	}
	for _, t := range sw.queue {
		targets = append(targets, streamwire.PullSource{Node: t.Name, Addr: t.Address})
	}
	for _, o := range n.pullAll(ctx, id, full, targets) {
		if o.OK {
			out = append(out, o)
			sw.holds[o.Node] = true
			sw.sources = append(sw.sources, cluster.Location{Node: o.Node, Address: o.Address})
		} else {
			n.log.Info("prefetch pull failed; retrying store-and-forward", "node", o.Node, "err", o.Message)
		}
	}
	for _, t := range sw.queue {
		if !sw.holds[t.Name] {
			missed = append(missed, t)
		}
	}
	sw.queue = missed
	out = append(out, sw.run(ctx, func(ctx context.Context, target cluster.Node, source cluster.Location) streamwire.NodeOutcome {
		return n.copyTo(ctx, id, streamwire.KindCopy, target, source)
	})...)
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// copyTo asks target's stream server to fetch the object from source.
func (n *Node) copyTo(ctx context.Context, id streamwire.ID, kind streamwire.Kind, target cluster.Node, source cluster.Location) streamwire.NodeOutcome {
	start := time.Now()
	o := streamwire.NodeOutcome{Node: target.Name, Address: target.Address, Source: source.Node}
	err := n.syncOn(ctx, target.Address, kind, source.Address, id)
	o.Duration = time.Since(start)
	if err != nil {
		o.Status, o.Message = streamwire.StatusPeerUnreachable.String(), fmt.Sprintf("node %s from %s: %v", target.Name, source.Node, err)
		var er *streamwire.ErrorReply
		if errors.As(err, &er) {
			o.Status = er.Status.String()
		}
		return o
	}
	o.Status, o.OK = streamwire.StatusOK.String(), true
	return o
}
