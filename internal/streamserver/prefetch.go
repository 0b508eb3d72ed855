package streamserver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// Prefetch defaults.
const (
	defaultFanout    = 1 // transfers one source serves at once: with links of equal speed, a doubling tree
	prefetchAttempts = 3 // sources tried per target before it is reported failed
)

// NodeOutcome is what a prefetch or a cluster delete did on one node.
type NodeOutcome = stream.NodeOutcome

// prefetchPlan is what a prefetch reads from the directory: the members
// of the group and the nodes holding the object.
type prefetchPlan struct {
	members []cluster.Node
	holders []cluster.Location
}

// planPrefetch reads the directory for a prefetch of id to group: an
// error if it fails (an *ErrorReply if nobody holds the object).
func (s *Server) planPrefetch(ctx context.Context, id streamwire.ID, group string) (prefetchPlan, error) {
	members, err := s.cluster.dir.GroupMembers(ctx, group)
	if err != nil {
		return prefetchPlan{}, err
	}
	holders, err := s.cluster.dir.Holders(ctx, id)
	if err != nil {
		return prefetchPlan{}, err
	}
	if s.holdsLocally(ctx, id) {
		holders = append(holders, cluster.Location{Node: s.cfg.NodeName, Address: s.advertise()})
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
func (s *Server) spread(ctx context.Context, id streamwire.ID, plan prefetchPlan, fanout int) []NodeOutcome {
	if fanout <= 0 {
		fanout = defaultFanout
	}
	sw := newSwarm(plan.holders, fanout)
	out := []NodeOutcome{}
	for _, m := range plan.members {
		if sw.holds[m.Name] {
			out = append(out, NodeOutcome{Node: m.Name, Address: m.Address, Status: streamwire.StatusAlreadyPresent.String(), OK: true})
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
	for _, o := range s.pullAll(ctx, id, full, targets) {
		if o.OK {
			out = append(out, o)
			sw.holds[o.Node] = true
			sw.sources = append(sw.sources, cluster.Location{Node: o.Node, Address: o.Address})
		} else {
			s.log.Info("prefetch pull failed; retrying store-and-forward", "node", o.Node, "err", o.Message)
		}
	}
	for _, t := range sw.queue {
		if !sw.holds[t.Name] {
			missed = append(missed, t)
		}
	}
	sw.queue = missed
	out = append(out, sw.run(ctx, func(ctx context.Context, target cluster.Node, source cluster.Location) NodeOutcome {
		return s.copyTo(ctx, id, stream.Copy, target, source)
	})...)
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

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
	out    NodeOutcome
}

func (sw *swarm) run(ctx context.Context, copyTo func(context.Context, cluster.Node, cluster.Location) NodeOutcome) []NodeOutcome {
	results := make(chan swarmResult)
	var out []NodeOutcome
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
				out = append(out, NodeOutcome{Node: t.Name, Address: t.Address, Status: streamwire.StatusPeerUnreachable.String(),
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

// copyTo asks target's stream server to fetch the object from source.
func (s *Server) copyTo(ctx context.Context, id streamwire.ID, kind stream.Kind, target cluster.Node, source cluster.Location) NodeOutcome {
	start := time.Now()
	o := NodeOutcome{Node: target.Name, Address: target.Address, Source: source.Node}
	c, err := stream.Connect(ctx, target.Address, stream.WithName(s.cfg.NodeName+"/prefetch"), stream.WithTimeout(s.cfg.IOTimeout))
	if err == nil {
		_, err = c.Sync(ctx, []stream.PeerRequest{{Kind: kind, From: source.Address, Objects: []stream.ObjectID{id}}})
		c.Close()
	}
	o.Duration = time.Since(start)
	if err != nil {
		o.Status, o.Message = streamwire.StatusPeerUnreachable.String(), fmt.Sprintf("node %s from %s: %v", target.Name, source.Node, err)
		if se, ok := err.(*stream.Error); ok {
			o.Status = se.Status.String()
		}
		return o
	}
	o.Status, o.OK = streamwire.StatusOK.String(), true
	return o
}

// deleteEverywhere deletes objects on every node the directory says holds
// them, and here; best effort, reported per node and object. If the
// directory fails, it deletes nothing and returns the error.
func (s *Server) deleteEverywhere(ctx context.Context, ids []streamwire.ID) ([]NodeOutcome, error) {
	targets := map[string]string{s.cfg.NodeName: ""} // node -> address ("" = local)
	for _, id := range ids {
		holders, err := s.cluster.dir.Holders(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, h := range holders {
			if h.Node != s.cfg.NodeName {
				targets[h.Node] = h.Address
			}
		}
	}
	// Every node at once: a slow or dead node costs its own timeout only.
	out := make([]NodeOutcome, 0, len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for node, addr := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := s.deleteOn(ctx, node, addr, ids)
			mu.Lock()
			out = append(out, o)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

// deleteOn deletes ids on one node (addr "" is this one).
func (s *Server) deleteOn(ctx context.Context, node, addr string, ids []streamwire.ID) NodeOutcome {
	start := time.Now()
	o := NodeOutcome{Node: node, Address: addr, Status: streamwire.StatusOK.String(), OK: true}
	var msgs []string
	var err error
	if addr == "" {
		o.Address = s.advertise()
		msgs = s.deleteLocal(ctx, ids)
	} else {
		var c *stream.Client
		if c, err = stream.Connect(ctx, addr, stream.WithName(s.cfg.NodeName+"/delete"), stream.WithTimeout(s.cfg.IOTimeout)); err == nil {
			msgs, err = c.DeleteLocal(ctx, toIDs(ids))
			c.Close()
		}
	}
	switch {
	case err != nil:
		o.OK, o.Status, o.Message = false, streamwire.StatusPeerUnreachable.String(), fmt.Sprintf("node %s (%s): %v", node, addr, err)
	case len(msgs) > 0:
		o.OK, o.Status, o.Message = false, streamwire.StatusStoreError.String(), fmt.Sprintf("node %s: %s", node, strings.Join(msgs, "; "))
	}
	o.Duration = time.Since(start)
	return o
}

// deleteLocal deletes from this server's store; absent objects are fine
// (a cluster delete is idempotent). It returns the other failures.
func (s *Server) deleteLocal(ctx context.Context, ids []streamwire.ID) []string {
	sc, err := s.useStore()
	if err != nil {
		return []string{err.Error()}
	}
	defer sc.release()
	errs, err := sc.st.Delete(ctx, toIDs(ids)...)
	if err != nil {
		return []string{err.Error()}
	}
	msgs := []string{}
	for _, e := range errs {
		if e != nil && !isNotFound(e) {
			msgs = append(msgs, e.Error())
		}
	}
	return msgs
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrObjectNotFound) }

func toIDs(ids []streamwire.ID) []store.ObjectID {
	out := make([]store.ObjectID, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
