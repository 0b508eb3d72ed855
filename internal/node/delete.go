package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/store"
)

// deleteEverywhere deletes objects on every node the directory says holds
// them, and here; best effort, reported per node and object. If the
// directory fails, it deletes nothing and returns the error.
func (n *Node) deleteEverywhere(ctx context.Context, ids []streamwire.ID) ([]streamwire.NodeOutcome, error) {
	targets := map[string]string{n.cfg.Name: ""} // node -> address ("" = local)
	for _, id := range ids {
		holders, err := n.dir.Holders(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, h := range holders {
			if h.Node != n.cfg.Name {
				targets[h.Node] = h.Address
			}
		}
	}
	// Every node at once: a slow or dead node costs its own timeout only.
	out := make([]streamwire.NodeOutcome, 0, len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for node, addr := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := n.deleteOn(ctx, node, addr, ids)
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
func (n *Node) deleteOn(ctx context.Context, node, addr string, ids []streamwire.ID) streamwire.NodeOutcome {
	start := time.Now()
	o := streamwire.NodeOutcome{Node: node, Address: addr, Status: streamwire.StatusOK.String(), OK: true}
	var msgs []string
	var err error
	if addr == "" {
		o.Address = n.cfg.Advertise
		msgs = n.DeleteLocal(ctx, ids)
	} else {
		msgs, err = n.deleteOnPeer(ctx, addr, ids)
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

// DeleteLocal deletes ids from the local store (the DELETE request, and
// this node's part of a cluster delete); absent objects are fine (a
// cluster delete is idempotent). It returns the other failures, one
// sentence each.
func (n *Node) DeleteLocal(ctx context.Context, ids []streamwire.ID) []string {
	sc, err := n.useStore()
	if err != nil {
		return []string{err.Error()}
	}
	defer sc.Release()
	errs, err := sc.Client.Delete(ctx, ids...)
	if err != nil {
		return []string{err.Error()}
	}
	msgs := []string{}
	for _, e := range errs {
		if e != nil && !errors.Is(e, store.ErrObjectNotFound) {
			msgs = append(msgs, e.Error())
		}
	}
	return msgs
}
