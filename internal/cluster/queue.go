package cluster

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/plasmastream/plasmastream/internal/wire"
)

// The queued writes: changes are applied to the in-memory state at once
// and written to etcd by the background goroutine in batches (flush).

// maxTxnOps is etcd's default --max-txn-ops; batches stay within it.
const maxTxnOps = 128

// maxDirty bounds the location changes waiting for a flush. Beyond it they
// are dropped and the directory rewrites its whole state under a new lease
// instead (a resync writes every location; revoking the old lease deletes
// the rest), so the memory they take does not grow with an etcd outage.
const maxDirty = 1 << 16

// batch is a set of changes written by one flush; its waiters learn the
// outcome when done is closed.
type batch struct {
	done chan struct{}
	err  error
}

// markDirty queues the write of id's location, within maxDirty. d.mu held.
func (d *Directory) markDirty(id wire.ID) {
	if d.overflow {
		return // the resync due writes it
	}
	if len(d.dirtyObjs) >= maxDirty {
		clear(d.dirtyObjs)
		d.overflow = true
		return
	}
	d.dirtyObjs[id] = struct{}{}
}

// mutate applies change to the in-memory state and waits for the flush that
// writes it, at most the operation timeout.
func (d *Directory) mutate(ctx context.Context, change func()) error {
	b, err := d.apply(change, true)
	if b == nil {
		return err
	}
	octx, cancel := d.opCtx(ctx)
	defer cancel()
	select {
	case <-b.done:
		return b.err // nil, ErrClosed or an *UnavailableError
	case <-octx.Done():
		return d.failed(ctx, "write", octx.Err())
	}
}

// apply applies change to the in-memory state and has it flushed; with
// wait, it returns the batch whose flush writes it (nil when none will:
// the directory is closed, or degraded and the error says so).
func (d *Directory) apply(change func(), wait bool) (*batch, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	change()
	if d.degraded || !wait {
		var err error
		if d.degraded && wait {
			err = d.downErr
		}
		d.mu.Unlock()
		d.poke()
		return nil, err
	}
	if d.pending == nil {
		d.pending = &batch{done: make(chan struct{})}
	}
	b := d.pending
	d.mu.Unlock()
	d.poke()
	return b, nil
}

func (d *Directory) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// failPending fails the waiters of the next flush. d.mu held.
func (d *Directory) failPending(err error) {
	if d.pending != nil {
		d.pending.err = err
		close(d.pending.done)
		d.pending = nil
	}
}

func (d *Directory) overflowed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.overflow
}

// flush writes the dirty part of the in-memory state under the current
// lease and tells the waiters.
func (d *Directory) flush() error {
	d.mu.Lock()
	b := d.pending
	d.pending = nil
	lease := d.lease
	var ops []clientv3.Op
	if d.dirtyNode {
		ops = append(ops, d.nodeOps(lease)...)
		for g := range d.removedGroups {
			ops = append(ops, clientv3.OpDelete(d.groupKey(g, d.self.Name)))
		}
		d.dirtyNode = false
		clear(d.removedGroups)
	}
	for id := range d.dirtyObjs {
		if l, ok := d.objects[id]; ok {
			ops = append(ops, clientv3.OpPut(d.objectKey(id), locationRecord(l), clientv3.WithLease(lease)))
		} else {
			ops = append(ops, clientv3.OpDelete(d.objectKey(id)))
		}
	}
	clear(d.dirtyObjs)
	d.mu.Unlock()

	err := d.commit(d.ctx, ops)
	if err != nil {
		err = d.unavailable(err)
		d.setDegraded(err)
	}
	if b != nil {
		b.err = err
		close(b.done)
	}
	return err
}

// commit runs ops in transactions of at most maxTxnOps.
func (d *Directory) commit(parent context.Context, ops []clientv3.Op) error {
	for len(ops) > 0 {
		n := min(len(ops), maxTxnOps)
		ctx, cancel := d.rpcCtx(parent)
		_, err := d.cli.Txn(ctx).Then(ops[:n]...).Commit()
		cancel()
		if err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}
