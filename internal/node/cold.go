package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/plasmastream/plasmastream/internal/activity"
	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/store"
)

// The cold copies of objects in the directory (docs/cluster.md, "Cold
// records"): this node records what its store writes to and deletes from
// its cold tier, and a FETCH of an object no node holds in memory restores
// it from this store's tier when the directory says a copy is there.

// coldTier is what the node knows of its store's cold tier.
type coldTier struct {
	mu   sync.Mutex
	url  string // "" without one (or a store older than the ColdTier request)
	host string // this machine, recorded beside a file:// tier
}

func (c *coldTier) get() (url, host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.url, c.host
}

// learnColdTier asks the store for its tier (at join and whenever the
// store reconnects: it may have restarted with another one).
func (n *Node) learnColdTier(ctx context.Context, st *store.Client) string {
	url, err := st.ColdTier(ctx)
	if err != nil {
		n.log.Warn("cannot ask the store for its cold tier: its cold copies are not recorded", "err", err)
	}
	host := ""
	if strings.HasPrefix(url, "file:") {
		host, _ = os.Hostname()
	}
	n.cold.mu.Lock()
	n.cold.url, n.cold.host = url, host
	n.cold.mu.Unlock()
	return url
}

// coldCopy is this node's cold record of an object its store's tier holds.
func (n *Node) coldCopy(size uint64, digest store.Digest, written store.Event) cluster.ColdCopy {
	url, host := n.cold.get()
	return cluster.ColdCopy{Tier: url, Host: host, Size: size, Digest: digest, Node: n.cfg.Name, Written: written.Time.UTC()}
}

// coldEvent mirrors a cold event of the store into the directory.
func (n *Node) coldEvent(ev store.Event) {
	url, host := n.cold.get()
	if url == "" {
		return
	}
	switch ev.Kind {
	case store.EventCold:
		n.dir.QueueColdCopy(ev.ID, n.coldCopy(ev.DataSize+uint64(ev.MetadataSize), ev.Digest, ev), false)
	case store.EventColdDeleted:
		n.dir.QueueColdRemoval(ev.ID, url, host)
	}
}

// fetchCold makes id local from this store's cold tier when no node
// holds it in memory: if the directory records a copy in the tier this
// store uses, the store adopts its record and a Get restores it
// (verified, whether or not the store runs with --cold-shared). A copy in
// another tier is a clear failure that names it and what to do.
func (n *Node) fetchCold(ctx context.Context, sc Store, id streamwire.ID, held *transfer.Held) streamwire.ObjectResult {
	fail := func(st streamwire.Status, format string, a ...any) streamwire.ObjectResult {
		return streamwire.ObjectResult{ID: id, Status: st, Message: fmt.Sprintf("object %x: ", id[:]) + fmt.Sprintf(format, a...)}
	}
	copies, err := n.dir.ColdCopies(ctx, id)
	if err != nil {
		st, msg := directoryError(err)
		return fail(st, "%s", msg)
	}
	if len(copies) == 0 {
		return fail(streamwire.StatusNotFound, "no node of the cluster holds it")
	}
	url, host := n.cold.get() // learned when the node last synced with its store
	c, ok := sameTier(copies, url, host)
	if !ok {
		mine := "has no cold tier"
		if url != "" {
			mine = "uses " + url
		}
		c := copies[0]
		return fail(streamwire.StatusNotFound, "no node of the cluster holds it in memory; the cold tier %s holds a copy (written by %s), but the store of %s %s: start plasma-store-server with -e %s (the same tier, with its endpoint and credentials) on this node, or fetch it on a node whose store uses that tier",
			c.Where(), c.Node, n.cfg.Name, mine, c.Tier)
	}
	found, err := sc.Client.Adopt(ctx, id)
	if err != nil {
		return fail(streamwire.StatusStoreError, "read its record in the cold tier %s: %v", url, err)
	}
	if !found[0] {
		if c.Host != host { // a file:// directory of another machine: maybe not this one
			return fail(streamwire.StatusNotFound, "the directory records a copy in the cold tier %s (written by %s), but the tier has no record of it: deleted since, or a file:// directory on another machine", c.Where(), c.Node)
		}
		// The very tier this store reads has no such object: the record
		// is stale (the copy was removed by hand, or by a store without a
		// stream server), and goes.
		n.dir.QueueColdRemoval(id, c.Tier, c.Host)
		n.log.Warn("removed a stale cold record: the tier has no such object", "object", fmt.Sprintf("%x", id[:]), "tier", c.Where(), "written_by", c.Node)
		return fail(streamwire.StatusNotFound, "the directory recorded a copy in the cold tier %s (written by %s), but the tier has no record of it (deleted since): the stale record is removed", c.Where(), c.Node)
	}
	t := n.cfg.Activity.Begin(activity.In, "restore", c.Where(), 1)
	t.Expect(int64(c.Size))
	sink := transfer.SinkFrom(ctx)
	sink.Announce(int64(c.Size))
	ok, err = transfer.Hold(ctx, sc.Client, held, id) // the store's Get restores it, every group verified
	res := streamwire.ObjectResult{ID: id, Status: streamwire.StatusOK, Bytes: c.Size}
	switch {
	case err != nil && errors.Is(err, store.ErrColdTier):
		res = fail(streamwire.StatusStoreError, "restore from the cold tier %s failed: %v", url, err)
	case err != nil:
		res = fail(streamwire.StatusStoreError, "the local store: %v", err)
	case !ok:
		res = fail(streamwire.StatusNotFound, "the store adopted its record in the cold tier %s, but the restore found nothing (deleted meanwhile?)", url)
	default:
		t.AddBytes(int64(c.Size))
		sink.Bytes(int64(c.Size))
	}
	t.End([]streamwire.ObjectResult{res}, nil)
	return res
}

// sameTier picks the copy in the tier url, preferring one recorded on
// this machine (a file:// directory is only the same on another machine
// if it is shared, which the store's adoption finds out).
func sameTier(copies []cluster.ColdCopy, url, host string) (cluster.ColdCopy, bool) {
	var found *cluster.ColdCopy
	for i, c := range copies {
		if url == "" || c.Tier != url {
			continue
		}
		if c.Host == host {
			return c, true
		}
		if found == nil {
			found = &copies[i]
		}
	}
	if found == nil {
		return cluster.ColdCopy{}, false
	}
	return *found, true
}
