package stream

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
)

const (
	// StatusNotClustered answers a cluster request to a standalone server.
	StatusNotClustered = streamwire.StatusNotClustered
	// StatusClusterUnavailable answers a request that needs the cluster
	// directory while etcd does not answer (within the server's
	// --etcd-timeout); requests on local objects still work.
	StatusClusterUnavailable = streamwire.StatusClusterUnavailable
)

// Node is a member of the cluster, as registered in its directory.
type Node = streamwire.Node

// Location is a node that holds an object (a hint: it may be stale).
type Location = streamwire.Location

// ColdCopy is a cold tier that holds a copy of an object, as the
// directory records it (a hint: the tier may have lost it since).
type ColdCopy = streamwire.ColdCopy

// Placement is where an object is: the nodes holding it in memory, and
// the cold tiers holding a copy.
type Placement = streamwire.Placement

// Fetch and the other cluster requests wait for their reply as long as
// ctx allows (the server's own transfers have deadlines).
//
// Fetch makes the objects available in the server's local store, pulling
// the missing ones from any node of the cluster that holds them (trying
// the next holder on failure). The result has one entry per object;
// err is non-nil when any object could not be fetched.
func (c *Client) Fetch(ctx context.Context, ids []ObjectID) (*PeerResult, error) {
	return c.FetchProgress(ctx, ids, nil)
}

// FetchProgress is Fetch with progress reported a few times a second
// while the objects arrive (progress may be nil). Progress counts the
// bytes verified so far and, as BytesAnnounced, the size of the objects
// whose transfer has begun.
func (c *Client) FetchProgress(ctx context.Context, ids []ObjectID, progress func(Progress)) (*PeerResult, error) {
	var res PeerResult
	err := c.do(ctx, func(tc *transfer.Conn) error {
		if progress != nil {
			if err := tc.WriteFrame(streamwire.TypeWantProgress, nil); err != nil {
				return err
			}
		}
		if err := tc.Send(streamwire.TypeFetch, streamwire.Copy{IDs: ids}.Append(nil)); err != nil {
			return err
		}
		var r streamwire.PeerResult
		if err := tc.ExpectSlowProgress(streamwire.TypeFetch|streamwire.ReplyBit, &r, wireProgress(progress)); err != nil {
			return replyErr(c.addr, err)
		}
		res = peerFromWire(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if res.Status != streamwire.StatusOK {
		return &res, &Error{Status: res.Status, Msg: res.Message}
	}
	return &res, nil
}

// Nodes lists the nodes registered in the cluster.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var nodes []Node
	err := c.jsonRequest(ctx, streamwire.TypeNodes, nil, &nodes)
	return nodes, err
}

// Locate returns, for each object, the nodes the directory says hold it.
func (c *Client) Locate(ctx context.Context, ids ...ObjectID) (map[ObjectID][]Location, error) {
	var out map[ObjectID][]Location // JSON keys: hex ids
	if err := c.jsonRequest(ctx, streamwire.TypeLocate, streamwire.Copy{IDs: ids}.Append(nil), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// LocateAll returns, for each object, the nodes the directory says hold
// it in memory and the cold tiers it says hold a copy. A server older
// than cold records answers as Locate would (no cold copies).
func (c *Client) LocateAll(ctx context.Context, ids ...ObjectID) (map[ObjectID]Placement, error) {
	var out map[ObjectID]Placement
	err := c.jsonRequest(ctx, streamwire.TypeLocate, streamwire.Locate{IDs: ids, Flags: streamwire.LocateCold}.Append(nil), &out)
	var se *Error
	if errors.As(err, &se) && se.Status == streamwire.StatusMalformed {
		holders, err := c.Locate(ctx, ids...)
		if err != nil {
			return nil, err
		}
		out = make(map[ObjectID]Placement, len(holders))
		for id, h := range holders {
			out[id] = Placement{Holders: h}
		}
		return out, nil
	}
	return out, err
}

func (c *Client) jsonRequest(ctx context.Context, t streamwire.Type, payload []byte, v any) error {
	return c.do(ctx, func(tc *transfer.Conn) error {
		return replyErr(c.addr, tc.RequestJSON(t, payload, v))
	})
}

// NodeOutcome is what a prefetch or a cluster delete did on one node.
type NodeOutcome = streamwire.NodeOutcome

// Prefetch asks the server, which must hold the object or know a node that
// does, to spread it to every live member of group: a swarm in which each
// node that finishes becomes a source and no source serves more than
// fanout transfers at once (0: the server's default, 1). With wait, the
// call returns the outcome on every member, and err is non-nil if any
// failed; without, it returns once the swarm has started.
func (c *Client) Prefetch(ctx context.Context, id ObjectID, group string, wait bool, fanout int) ([]NodeOutcome, error) {
	var out []NodeOutcome
	m := streamwire.Prefetch{ID: id, Group: group, Wait: wait, Fanout: uint8(min(max(fanout, 0), 255))}
	if err := c.jsonRequest(ctx, streamwire.TypePrefetch, m.Append(nil), &out); err != nil {
		return nil, err
	}
	return out, outcomeErr("prefetch of "+id.String()+" to group "+group, out)
}

// DeleteCluster deletes the objects on every node that holds them (best
// effort), reporting each node.
func (c *Client) DeleteCluster(ctx context.Context, ids ...ObjectID) ([]NodeOutcome, error) {
	var out []NodeOutcome
	if err := c.jsonRequest(ctx, streamwire.TypeDeleteAll, streamwire.Copy{IDs: ids}.Append(nil), &out); err != nil {
		return nil, err
	}
	return out, outcomeErr("cluster delete", out)
}

// DeleteLocal deletes the objects from the server's own store; objects it
// does not have are fine. It returns the other failures, one sentence each.
func (c *Client) DeleteLocal(ctx context.Context, ids []ObjectID) ([]string, error) {
	var msgs []string
	err := c.jsonRequest(ctx, streamwire.TypeDeleteLocal, streamwire.Copy{IDs: ids}.Append(nil), &msgs)
	return msgs, err
}

func outcomeErr(what string, out []NodeOutcome) error {
	var failed []string
	for _, o := range out {
		if !o.OK {
			failed = append(failed, o.Message)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &Error{Status: streamwire.StatusPeerUnreachable, Msg: fmt.Sprintf("%s: %d of %d nodes failed: %s", what, len(failed), len(out), strings.Join(failed, "; "))}
}

// JoinGroup makes the server's node a member of group (prefetches to the
// group reach it from now on); it returns the node's groups.
func (c *Client) JoinGroup(ctx context.Context, group string) ([]string, error) {
	return c.group(ctx, group, true)
}

// LeaveGroup removes the server's node from group.
func (c *Client) LeaveGroup(ctx context.Context, group string) ([]string, error) {
	return c.group(ctx, group, false)
}

func (c *Client) group(ctx context.Context, group string, join bool) ([]string, error) {
	groups := []string{}
	err := c.jsonRequest(ctx, streamwire.TypeGroup, streamwire.Group{Name: group, Join: join}.Append(nil), &groups)
	return groups, err
}

// PullSource is a node a Pull may take ranges from: Full when it holds
// the whole object, else a node receiving it too.
type PullSource = streamwire.PullSource

// SourceStat is what one source contributed to a pull.
type SourceStat = streamwire.SourceStat

// PullOutcome is what a Pull did.
type PullOutcome = streamwire.PullOutcome

// Pull asks the server to fetch object id as verified ranges from several
// sources at once (no directory needed). The object's 16 KiB groups are
// cut into slices: the server takes slice own of slices from the full
// sources and each other slice from the partial source that owns it, in
// order; slices 1 spreads everything over the full sources. err is
// non-nil if the pull failed.
func (c *Client) Pull(ctx context.Context, id ObjectID, sources []PullSource, own, slices int) (PullOutcome, error) {
	return c.PullProgress(ctx, id, sources, own, slices, nil)
}

// PullProgress is Pull with progress reported a few times a second while
// the object arrives (progress may be nil), as FetchProgress does.
func (c *Client) PullProgress(ctx context.Context, id ObjectID, sources []PullSource, own, slices int, progress func(Progress)) (PullOutcome, error) {
	var out PullOutcome
	m := streamwire.Pull{ID: id, Sources: sources, Own: uint32(own), Slices: uint32(slices)}
	err := c.do(ctx, func(tc *transfer.Conn) error {
		return replyErr(c.addr, tc.RequestJSONProgress(streamwire.TypePull, m.Append(nil), &out, wireProgress(progress)))
	})
	if err != nil {
		return out, err
	}
	if !out.OK {
		return out, &Error{Status: streamwire.Status(out.Code), Msg: out.Message}
	}
	return out, nil
}

// wireProgress adapts a Progress callback to the protocol's frames.
func wireProgress(progress func(Progress)) func(streamwire.Progress) {
	if progress == nil {
		return nil
	}
	return func(p streamwire.Progress) {
		progress(Progress{Bytes: p.BytesDone, BytesAnnounced: p.BytesTotal, Objects: int(p.ObjectsDone), ObjectsTotal: int(p.ObjectsTotal)})
	}
}

// Activity is a node's transfer counters and its transfers under way and
// recent (what plasma top shows).
type Activity = streamwire.Activity

// Activity asks the server for its transfers and counters.
func (c *Client) Activity(ctx context.Context) (Activity, error) {
	var a Activity
	err := c.jsonRequest(ctx, streamwire.TypeActivity, nil, &a)
	return a, err
}
