package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The registration: the lease and its keep-alive, the background
// goroutine that writes changes, and the resync that rewrites everything
// under a new lease after a failure.

// run owns every write to etcd after Open: it flushes changes in batches,
// watches the lease's keep-alive, checks the registration now and then, and
// when the lease is lost or a write fails, re-registers everything under a
// new lease, retrying with back-off until it works or Close.
func (d *Directory) run(ka <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(d.done)
	verify := time.NewTicker(max(3*d.ttl, 5*time.Second))
	defer verify.Stop()
	bo := backoff{min: 100 * time.Millisecond, max: min(max(d.ttl/2, time.Second), 5*time.Second)}
	needResync := false
	var retry <-chan time.Time
	failures := 0
	for {
		if needResync && retry == nil {
			nka, err := d.resync(d.ctx, false)
			switch {
			case err == nil:
				needResync, failures, ka = false, 0, nka
				bo.reset()
				d.log.Info("re-registered in the cluster directory", "locations", d.LocalLocations(), "lease", fmt.Sprintf("%x", int64(d.currentLease())))
			case d.ctx.Err() != nil:
				return
			case d.cli.Ctx().Err() != nil:
				d.log.Error("etcd client closed; the node is no longer kept in the cluster directory")
				<-d.stop
				return
			default:
				failures++
				delay := bo.next()
				lvl := slog.LevelWarn
				if errors.Is(err, ErrNameTaken) {
					lvl = slog.LevelError
				}
				if failures <= 3 || failures%10 == 0 || errors.Is(err, ErrNameTaken) {
					d.log.Log(d.ctx, lvl, "cannot re-register in the cluster directory; retrying", "err", err, "attempt", failures, "retry_in", delay.Round(time.Millisecond))
				}
				retry = time.After(delay)
			}
		}
		select {
		case <-d.stop:
			return
		case <-retry:
			retry = nil
		case _, ok := <-ka:
			if !ok {
				ka = nil
				if d.ctx.Err() != nil {
					return
				}
				d.log.Warn("cluster directory lease lost (etcd unreachable for longer than the TTL, or restarted without it); re-registering", "ttl", d.ttl)
				needResync = true
				d.setDegraded(ErrUnavailable)
			}
		case <-d.wake:
			if needResync {
				continue // the resync writes everything
			}
			if d.overflowed() {
				d.log.Warn("more location changes waiting than a flush takes; rewriting everything", "limit", maxDirty)
				needResync = true
				d.setDegraded(ErrUnavailable)
				continue
			}
			if err := d.flush(); err != nil {
				if d.ctx.Err() != nil {
					return
				}
				d.log.Warn("cluster directory write failed; will re-register everything", "err", err)
				needResync = true
			}
		case <-verify.C:
			if needResync {
				continue
			}
			if err := d.verify(); err != nil {
				d.log.Warn("cluster directory registration changed behind our back; re-registering", "err", err)
				needResync = true
				d.setDegraded(ErrUnavailable)
			}
		}
	}
}

func (d *Directory) setDegraded(cause error) {
	err, ok := cause.(*UnavailableError)
	if !ok {
		err = d.unavailable(cause)
	}
	d.mu.Lock()
	d.degraded, d.downErr = true, err
	d.failPending(err)
	d.mu.Unlock()
}

// rpcCtx bounds one etcd call made by the background goroutine: the TTL,
// within [2 s, 5 s]. A call that times out only makes the directory write
// everything again later.
func (d *Directory) rpcCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, min(max(d.ttl, 2*time.Second), 5*time.Second))
}

// nodeOps writes the node record and its group keys. d.mu held.
func (d *Directory) nodeOps(lease clientv3.LeaseID) []clientv3.Op {
	ops := []clientv3.Op{clientv3.OpPut(d.nodeKey(d.self.Name), nodeRecord(d.self), clientv3.WithLease(lease))}
	for _, g := range d.self.Groups {
		ops = append(ops, clientv3.OpPut(d.groupKey(g, d.self.Name), "{}", clientv3.WithLease(lease)))
	}
	return ops
}

// verify checks that the node record is still ours.
func (d *Directory) verify() error {
	ctx, cancel := context.WithTimeout(d.ctx, 2*time.Second)
	defer cancel()
	resp, err := d.cli.Get(ctx, d.nodeKey(d.self.Name))
	if err != nil {
		return nil // unreachable: the keep-alive will tell if the lease goes
	}
	d.mu.Lock()
	lease := d.lease
	d.mu.Unlock()
	if len(resp.Kvs) == 0 {
		return errors.New("node record missing")
	}
	if l := clientv3.LeaseID(resp.Kvs[0].Lease); l != lease {
		return fmt.Errorf("node record under lease %x, ours is %x", int64(l), int64(lease))
	}
	return nil
}

// resync grants a new lease and writes the whole in-memory state under it
// (node record, groups, every location), then switches to it and revokes
// the old lease, which deletes whatever the old lease still carried that is
// no longer wanted (a location removed while etcd was unreachable). With
// takeover, a node record of the same name under a lease we do not own
// (a previous incarnation of this node) is taken over by revoking that
// lease; without it, ErrNameTaken.
func (d *Directory) resync(parent context.Context, takeover bool) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	if err := d.cli.Ctx().Err(); err != nil {
		return nil, fmt.Errorf("etcd client closed: %w", err)
	}
	ctx, cancel := d.rpcCtx(parent)
	grant, err := d.cli.Grant(ctx, int64(d.ttl/time.Second))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("grant lease: %w", err)
	}
	lease := grant.ID
	kaCtx, kaCancel := context.WithCancel(d.ctx)
	d.mu.Lock()
	d.owned[lease] = kaCancel
	d.mu.Unlock()
	fail := func(err error) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if d.revoke(ctx, lease) != nil {
			// Unreachable: without keep-alive it expires within the TTL.
			d.mu.Lock()
			kaCancel()
			d.mu.Unlock()
		}
		return nil, err
	}
	ka, err := d.cli.KeepAlive(kaCtx, lease)
	if err != nil {
		return fail(fmt.Errorf("keep lease alive: %w", err))
	}

	// Take a snapshot of the state; changes from now on are dirty again and
	// flushed under the new lease after the switch.
	d.mu.Lock()
	nodeOps := d.nodeOps(lease)
	objOps := make([]clientv3.Op, 0, len(d.objects))
	for id, l := range d.objects {
		objOps = append(objOps, clientv3.OpPut(d.objectKey(id), locationRecord(l), clientv3.WithLease(lease)))
	}
	d.dirtyNode = false
	clear(d.removedGroups)
	clear(d.dirtyObjs)
	d.overflow = false
	d.mu.Unlock()

	if err := d.register(parent, nodeOps[0], takeover); err != nil {
		return fail(err)
	}
	if err := d.commit(parent, append(nodeOps[1:], objOps...)); err != nil {
		return fail(fmt.Errorf("write groups and locations: %w", err))
	}

	d.mu.Lock()
	old := d.lease
	d.lease = lease
	d.degraded, d.downErr = false, nil
	stale := make([]clientv3.LeaseID, 0, len(d.owned))
	for id := range d.owned {
		if id != lease {
			stale = append(stale, id)
		}
	}
	dirty := d.dirtyNode || len(d.dirtyObjs) > 0 || d.overflow
	d.mu.Unlock()
	for _, id := range stale {
		ctx, cancel := d.rpcCtx(parent)
		if err := d.revoke(ctx, id); err != nil {
			d.log.Debug("revoke old lease failed; it expires by itself", "lease", fmt.Sprintf("%x", int64(id)), "err", err)
			d.mu.Lock()
			if stop, ok := d.owned[id]; ok {
				stop()
			}
			d.mu.Unlock()
		}
		cancel()
	}
	if old != 0 && len(stale) == 0 {
		d.log.Debug("old lease already gone", "lease", fmt.Sprintf("%x", int64(old)))
	}
	if dirty {
		d.poke()
	}
	return ka, nil
}

// register writes the node record under put's lease if the name is free or
// held by a lease of ours (or, with takeover, anyone's: that lease is
// revoked first).
func (d *Directory) register(parent context.Context, put clientv3.Op, takeover bool) error {
	key := d.nodeKey(d.self.Name)
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := d.rpcCtx(parent)
		resp, err := d.cli.Get(ctx, key)
		cancel()
		if err != nil {
			return fmt.Errorf("read node record: %w", err)
		}
		var cmp clientv3.Cmp
		if len(resp.Kvs) == 0 {
			cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		} else {
			holder := clientv3.LeaseID(resp.Kvs[0].Lease)
			d.mu.Lock()
			_, ours := d.owned[holder]
			d.mu.Unlock()
			if !ours && holder != 0 {
				if !takeover {
					return fmt.Errorf("%w (node record %s under lease %x, not ours)", ErrNameTaken, key, int64(holder))
				}
				d.log.Warn("taking over the node name from a previous registration", "lease", fmt.Sprintf("%x", int64(holder)), "record", string(resp.Kvs[0].Value))
				ctx, cancel := d.rpcCtx(parent)
				_, err := d.cli.Revoke(ctx, holder)
				cancel()
				if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
					return fmt.Errorf("revoke the previous registration's lease: %w", err)
				}
				continue
			}
			cmp = clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)
		}
		ctx, cancel = d.rpcCtx(parent)
		tr, err := d.cli.Txn(ctx).If(cmp).Then(put).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("write node record: %w", err)
		}
		if tr.Succeeded {
			return nil
		}
	}
	return errors.New("node record keeps changing under us")
}

func (d *Directory) currentLease() clientv3.LeaseID {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lease
}

// revokeOwned revokes every lease the directory granted.
func (d *Directory) revokeOwned(ctx context.Context) error {
	d.mu.Lock()
	ids := make([]clientv3.LeaseID, 0, len(d.owned))
	for id, stop := range d.owned {
		stop()
		ids = append(ids, id)
	}
	d.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := d.revoke(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// revoke revokes one lease and forgets it (also when etcd no longer has it).
func (d *Directory) revoke(ctx context.Context, id clientv3.LeaseID) error {
	_, err := d.cli.Revoke(ctx, id)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return err
	}
	d.mu.Lock()
	if stop, ok := d.owned[id]; ok {
		stop()
		delete(d.owned, id)
	}
	d.mu.Unlock()
	return nil
}
