package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/plasmastream/plasmastream/internal/wire"
)

// This node's object locations, and the holders of an object.

// AddLocation records that this node holds object id (size bytes, BLAKE3
// root digest, zero when unknown). It returns once etcd has it, or an error: an
// *UnavailableError (matching ErrUnavailable) when etcd has not answered
// within the operation timeout or the registration is lost, and the
// location is kept and written on recovery; ctx's error when ctx ends
// first, and the write still happens.
func (d *Directory) AddLocation(ctx context.Context, id wire.ID, size uint64, digest wire.Digest) error {
	l := loc{size: size, digest: digest}
	return d.mutate(ctx, func() {
		d.objects[id] = l
		d.markDirty(id)
	})
}

// RemoveLocation records that this node no longer holds object id. Errors as
// for AddLocation.
func (d *Directory) RemoveLocation(ctx context.Context, id wire.ID) error {
	return d.mutate(ctx, func() {
		delete(d.objects, id)
		d.markDirty(id)
	})
}

// RetainLocations withdraws every location of this node whose object keep
// rejects (the store restarted and lost them). Errors as for AddLocation.
func (d *Directory) RetainLocations(ctx context.Context, keep func(id wire.ID) bool) error {
	return d.mutate(ctx, func() {
		for id := range d.objects {
			if !keep(id) {
				delete(d.objects, id)
				d.dirtyObjs[id] = struct{}{}
			}
		}
	})
}

// LocalLocations is the number of locations this node has recorded (the
// in-memory set, whether or not etcd has them yet).
func (d *Directory) LocalLocations() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.objects)
}

// QueueLocation records, as AddLocation, that this node holds object id,
// without waiting for etcd: the background goroutine writes it (at once,
// or when etcd answers again). It fails only when the directory is closed.
func (d *Directory) QueueLocation(id wire.ID, size uint64, digest wire.Digest) error {
	l := loc{size: size, digest: digest}
	_, err := d.apply(func() {
		d.objects[id] = l
		d.markDirty(id)
	}, false)
	return err
}

// QueueRemoval records, as RemoveLocation, that this node no longer holds
// object id, without waiting for etcd.
func (d *Directory) QueueRemoval(id wire.ID) error {
	_, err := d.apply(func() {
		delete(d.objects, id)
		d.markDirty(id)
	}, false)
	return err
}

// Holders lists the registered nodes that hold object id, sorted by node
// name, with their addresses. A location whose node is no longer registered
// is never returned. The list may include this node. Like every read, it
// waits for etcd at most the operation timeout (then an *UnavailableError).
func (d *Directory) Holders(parent context.Context, id wire.ID) ([]Location, error) {
	if err := d.usable(); err != nil {
		return nil, err
	}
	ctx, cancel := d.opCtx(parent)
	defer cancel()
	what := fmt.Sprintf("holders of %s", id)
	resp, err := d.cli.Get(ctx, d.objectPrefix(id), clientv3.WithPrefix())
	if err != nil {
		return nil, d.failed(parent, what, err)
	}
	type rec struct {
		Size   uint64 `json:"size"`
		Digest string `json:"digest"`
	}
	recs := map[string]rec{}
	names := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), d.objectPrefix(id))
		var r rec
		if err := json.Unmarshal(kv.Value, &r); err != nil || name == "" || strings.Contains(name, "/") {
			d.log.Warn("ignoring malformed location", "key", string(kv.Key), "err", err)
			continue
		}
		recs[name] = r
		names = append(names, name)
	}
	nodes, err := d.nodesNamed(ctx, names)
	if err != nil {
		return nil, d.failed(parent, what, err)
	}
	out := make([]Location, 0, len(nodes))
	for _, n := range nodes {
		r := recs[n.Name]
		// A digest this node cannot read is as good as unknown: the
		// location itself still serves.
		digest, _ := wire.ParseDigest(r.Digest)
		out = append(out, Location{Node: n.Name, Address: n.Address, Size: r.Size, Digest: digest})
	}
	return out, nil
}
