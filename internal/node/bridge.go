package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// What the NATS bridge (package bridge) asks of the node: fetches from
// sources it learnt from announcements, not from the directory (they may
// be at another site, in no etcd this node knows), and the directory's
// holders of an object.

// ErrNotClustered is Holders on a node without a directory.
var ErrNotClustered = errors.New("not in a cluster (no --etcd)")

// FetchFrom makes object id local with the verified, resumable,
// multi-source fetch (transfer.Fetch) from sources, each group checked
// against the object's outboard and the outboard against digest. It
// shares the transfer of a concurrent fetch of the same object here (a
// FETCH, a PULL or another announcement); progress, if set, gets the
// bytes of each range as it verifies (only for a transfer this call
// runs). The object is not held after the call.
func (n *Node) FetchFrom(ctx context.Context, id streamwire.ID, sources []streamwire.PullSource, digest wire.Digest, progress func(int64)) transfer.FetchResult {
	sc, err := n.useStore()
	if err != nil {
		return transfer.FetchResult{ObjectResult: streamwire.ObjectResult{ID: id, Status: streamwire.StatusStoreUnavailable,
			Message: fmt.Sprintf("object %x: the local store: %v", id[:], err)}}
	}
	defer sc.Release()
	v, _, _ := n.fetches.Do(string(id[:]), func() (any, error) {
		return n.fetchOnceProgress(ctx, sc, id, sources, digest, progress), nil
	})
	return v.(transfer.FetchResult)
}

// fetchOnceProgress is fetchOnce without a Held and with a progress
// callback.
func (n *Node) fetchOnceProgress(ctx context.Context, sc Store, id streamwire.ID, sources []streamwire.PullSource, digest wire.Digest, progress func(int64)) transfer.FetchResult {
	res := transfer.Fetch(ctx, sc.Client, id, sources, transfer.FetchOptions{
		Stats: n.cfg.Stats, Partials: sc.Partials, Digest: digest, Dial: n.dialPeer, Progress: progress,
	})
	for _, src := range res.Sources {
		if src.Failed != "" {
			n.log.Warn("fetch: source failed", "object", id, "node", src.Node, "address", src.Address, "err", src.Failed)
		}
	}
	return res
}

// Holders lists the nodes of the cluster directory that hold object id;
// ErrNotClustered without a directory.
func (n *Node) Holders(ctx context.Context, id streamwire.ID) ([]cluster.Location, error) {
	if n.dir == nil {
		return nil, ErrNotClustered
	}
	return n.dir.Holders(ctx, id)
}
