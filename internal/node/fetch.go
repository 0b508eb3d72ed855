package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/plasmastream/plasmastream/internal/activity"
	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// fetch answers a cluster FETCH: it makes each object available in the
// local store, pulling missing ones from the holders found in the
// directory: verified ranges from all of them at once (a stale location
// or a corrupt holder costs its own ranges, which the others take over).
// Concurrent fetches of one object share one transfer. The objects it
// reports here stay referenced until the reply is sent: the objects of
// one FETCH never evict each other (what does not fit is StoreFull).
func (n *Node) fetch(ctx context.Context, c *transfer.Conn, ids []streamwire.ID) (streamwire.Status, error) {
	sc, err := n.useStore()
	if err != nil {
		return storeFailed(c, err)
	}
	defer sc.Release()
	held := transfer.NewHeld(sc.Client)
	defer held.Release()
	r := n.fetchAll(ctx, sc, ids, held)
	if n.cfg.Received != nil {
		n.cfg.Received("FETCH", r)
	}
	return r.Status, c.Send(streamwire.TypeFetch|streamwire.ReplyBit, r.Append(nil))
}

// fetchAll fetches ids, SyncConcurrency at once, into held.
func (n *Node) fetchAll(ctx context.Context, sc Store, ids []streamwire.ID, held *transfer.Held) streamwire.PeerResult {
	start := time.Now()
	r := streamwire.PeerResult{Kind: streamwire.KindCopy, Addr: "cluster", Status: streamwire.StatusOK,
		Objects: make([]streamwire.ObjectResult, len(ids))}
	var g errgroup.Group
	g.SetLimit(max(n.cfg.Concurrency, 1))
	var down atomic.Pointer[error] // etcd did not answer: the objects not yet looked up fail alike, at once
	for i, id := range ids {
		g.Go(func() error {
			r.Objects[i] = n.fetchOne(ctx, sc, id, held, &down)
			transfer.SinkFrom(ctx).Object()
			return nil
		})
	}
	g.Wait()
	r.DurationNs = int64(time.Since(start))
	for _, o := range r.Objects {
		r.Bytes += o.Bytes
		if !o.Status.Success() && r.Status == streamwire.StatusOK {
			r.Status, r.Message = o.Status, o.Message
		}
	}
	return r
}

// fetchOne fetches one object of a FETCH; down is the directory's
// unavailability, once one of the request's objects met it.
func (n *Node) fetchOne(ctx context.Context, sc Store, id streamwire.ID, held *transfer.Held, down *atomic.Pointer[error]) streamwire.ObjectResult {
	if ok, err := transfer.Hold(ctx, sc.Client, held, id); err == nil && ok {
		return streamwire.ObjectResult{ID: id, Status: streamwire.StatusAlreadyPresent}
	}
	var holders []cluster.Location
	var err error
	if e := down.Load(); e != nil {
		err = *e
	} else if holders, err = n.dir.Holders(ctx, id); errors.Is(err, cluster.ErrUnavailable) {
		first := err
		down.CompareAndSwap(nil, &first)
	}
	if err != nil {
		st, msg := directoryError(err)
		return streamwire.ObjectResult{ID: id, Status: st, Message: fmt.Sprintf("object %x: %s", id[:], msg)}
	}
	rand.Shuffle(len(holders), func(i, j int) { holders[i], holders[j] = holders[j], holders[i] })
	var sources []streamwire.PullSource
	var digest wire.Digest // the first holder's that is known
	for _, h := range holders {
		if h.Node == n.cfg.Name {
			continue // a stale location of our own
		}
		sources = append(sources, streamwire.PullSource{Node: h.Node, Addr: h.Address, Full: true})
		if digest.IsZero() {
			digest = h.Digest
		}
	}
	if len(sources) == 0 {
		return n.fetchCold(ctx, sc, id, held)
	}
	if size := holders[0].Size; bao.OutboardSize(size) > storewire.MaxOutboard {
		return n.fetchByCopy(ctx, sc, id, sources, held)
	}
	return n.fetchFrom(ctx, sc, id, sources, digest, 0, 0, held).ObjectResult
}

// fetchByCopy fetches an object too large for an outboard (over 16 GiB)
// with a COPY from one holder after the other (the whole object verified
// against its digest, no resumption).
func (n *Node) fetchByCopy(ctx context.Context, sc Store, id streamwire.ID, sources []streamwire.PullSource, held *transfer.Held) streamwire.ObjectResult {
	var tried []string
	var last streamwire.ObjectResult
	for _, h := range sources {
		dial := func() (*transfer.Conn, error) { return n.dialPeer(ctx, h.Addr) }
		t := n.cfg.Activity.Begin(activity.In, "fetch copy", h.Node, 1)
		res, err := transfer.Receive(ctx, dial, sc.Client, streamwire.KindCopy, []streamwire.ID{id}, transfer.ReceiveOptions{Stats: n.cfg.Stats, Partials: sc.Partials, Held: held,
			Progress: t.Add, Expect: t.Expect})
		t.End(res, err)
		if last = res[0]; last.Status.Success() {
			return last
		}
		tried = append(tried, fmt.Sprintf("%s (%s): %s", h.Node, h.Addr, last.Status))
	}
	last.Message = fmt.Sprintf("object %x: every holder failed: %s", id[:], strings.Join(tried, "; "))
	return last
}

// fetchFrom makes object id local with a verified multi-source fetch from
// sources (see transfer.Fetch). Concurrent fetches of one object here
// share one transfer. A successful result is referenced in held (see
// transfer.Held), which belongs to sc: a caller that shared another's
// transfer takes its own reference, and fetches again in the unlikely case
// that the object was evicted before it could.
func (n *Node) fetchFrom(ctx context.Context, sc Store, id streamwire.ID, sources []streamwire.PullSource, digest wire.Digest, own, slices int, held *transfer.Held) transfer.FetchResult {
	for attempt := 0; ; attempt++ {
		ran := false // this caller's function ran: its Fetch holds the object in held
		v, _, _ := n.fetches.Do(string(id[:]), func() (any, error) {
			ran = true
			return n.fetchOnce(ctx, sc, id, sources, digest, own, slices, held), nil
		})
		res := v.(transfer.FetchResult)
		if ran || !res.Status.Success() {
			return res
		}
		ok, err := transfer.Hold(ctx, sc.Client, held, id)
		switch {
		case ok:
			return res
		case err != nil:
			res.Status, res.Message = streamwire.StatusStoreError, fmt.Sprintf("object %x: the local store: %v", id[:], err)
			return res
		case attempt > 0:
			res.Status, res.Message = streamwire.StatusStoreFull, fmt.Sprintf("object %x was evicted from the local store as soon as it arrived, twice; free space in the store", id[:])
			return res
		}
	}
}

// fetchOnce runs one transfer.Fetch for fetchFrom.
func (n *Node) fetchOnce(ctx context.Context, sc Store, id streamwire.ID, sources []streamwire.PullSource, digest wire.Digest, own, slices int, held *transfer.Held) transfer.FetchResult {
	start := time.Now()
	names := make([]string, len(sources))
	for i, s := range sources {
		names[i] = s.Node
	}
	t := n.cfg.Activity.Begin(activity.In, "fetch", strings.Join(names, ", "), 1)
	sink := transfer.SinkFrom(ctx) // the client asked for PROGRESS frames (WANT-PROGRESS)
	res := transfer.Fetch(ctx, sc.Client, id, sources, transfer.FetchOptions{
		Stats: n.cfg.Stats, Partials: sc.Partials, Digest: digest, Own: own, Slices: slices, Held: held,
		Dial:     n.dialPeer,
		Progress: func(b int64) { t.AddBytes(b); sink.Bytes(b) },
		Expect:   func(b int64) { t.Expect(b); sink.Announce(b) },
	})
	t.End([]streamwire.ObjectResult{res.ObjectResult}, nil)
	if n.cfg.FetchSeconds != nil {
		n.cfg.FetchSeconds.Observe(time.Since(start).Seconds())
	}
	for _, src := range res.Sources {
		if src.Failed != "" {
			n.log.Warn("fetch: source failed", "object", id, "node", src.Node, "address", src.Address, "err", src.Failed)
		}
	}
	return res
}
