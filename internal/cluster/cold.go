package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// Cold records: which cold tiers hold a copy of an object. One key per
// object and tier, <prefix>cold/<oid>/<tier>, written by the node whose
// store wrote the copy and deleted by the node whose store deleted it.
// Unlike locations they are written under no lease: a copy in a bucket
// outlives the node that put it there, and that is the point of
// recording it (another node on the same tier can restore it).
//
// The stream server mirrors its store's cold events with QueueColdCopy
// and QueueColdRemoval, which never wait for etcd; coldWriter writes
// them in the background and retries until etcd takes them.

// ColdCopy is a cold record (see streamwire.ColdCopy).
type ColdCopy = streamwire.ColdCopy

// maxColdPending bounds the cold changes waiting for etcd; beyond it new
// ones are dropped (and logged): the records are hints.
const maxColdPending = 1 << 16

func (d *Directory) coldPrefix(id wire.ID) string { return d.prefix + "cold/" + id.String() + "/" }

// coldKey is the key of id's record in tier (host: the machine of a
// file:// tier). The tier's URL is escaped, so that the key's last
// segment holds no slash.
func (d *Directory) coldKey(id wire.ID, tier, host string) string {
	where := tier
	if host != "" {
		where += "@" + host
	}
	return d.coldPrefix(id) + url.PathEscape(where)
}

type coldChange struct {
	value    string // the record; "" deletes the key
	ifAbsent bool   // write only if no record is there (another node's is kept)
}

// coldWriter writes queued cold changes to etcd, in its own goroutine.
type coldWriter struct {
	mu      sync.Mutex
	pending map[string]coldChange
	dropped int
	wake    chan struct{}
	done    chan struct{}
}

func newColdWriter() *coldWriter {
	return &coldWriter{pending: map[string]coldChange{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// QueueColdCopy records that c.Tier holds object id, without waiting for
// etcd. With ifAbsent an existing record (another node's) is kept: what
// a node learns by listing its store's tier at start, it did not write.
func (d *Directory) QueueColdCopy(id wire.ID, c ColdCopy, ifAbsent bool) {
	b, _ := json.Marshal(c)
	d.queueCold(d.coldKey(id, c.Tier, c.Host), coldChange{value: string(b), ifAbsent: ifAbsent})
}

// QueueColdRemoval records that tier (on host, for a file:// tier) no
// longer holds object id, without waiting for etcd.
func (d *Directory) QueueColdRemoval(id wire.ID, tier, host string) {
	d.queueCold(d.coldKey(id, tier, host), coldChange{})
}

func (d *Directory) queueCold(key string, ch coldChange) {
	w := d.cold
	w.mu.Lock()
	if _, ok := w.pending[key]; !ok && len(w.pending) >= maxColdPending {
		w.dropped++
		if w.dropped == 1 || w.dropped%1000 == 0 {
			d.log.Warn("cold records waiting for etcd exceed the bound; dropping changes", "bound", maxColdPending, "dropped", w.dropped)
		}
		w.mu.Unlock()
		return
	}
	if old, ok := w.pending[key]; ok && old.value != "" && ch.ifAbsent {
		ch.ifAbsent = old.ifAbsent // a newer conditional write does not weaken a pending plain one
	}
	w.pending[key] = ch
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// runCold writes the queued cold changes until the directory stops, then
// makes one last attempt (bounded) so that a clean shutdown loses none.
func (d *Directory) runCold() {
	w := d.cold
	defer close(w.done)
	bo := backoff{min: 100 * time.Millisecond, max: 5 * time.Second}
	var retry <-chan time.Time
	for {
		select {
		case <-d.stop:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			d.flushCold(ctx)
			cancel()
			return
		case <-w.wake:
		case <-retry:
			retry = nil
		}
		if retry != nil {
			continue // a back-off is running: the change waits for it
		}
		ctx, cancel := context.WithTimeout(d.ctx, d.opTimeout)
		err := d.flushCold(ctx)
		cancel()
		if err != nil {
			delay := bo.next()
			d.log.Warn("cannot write cold records to the cluster directory; retrying", "err", err, "retry_in", delay.Round(time.Millisecond))
			retry = time.After(delay)
			continue
		}
		bo.reset()
	}
}

// flushCold writes what is queued; what fails is queued again (unless a
// newer change of the same key came meanwhile).
func (d *Directory) flushCold(ctx context.Context) error {
	w := d.cold
	w.mu.Lock()
	batch := w.pending
	w.pending = map[string]coldChange{}
	w.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	var plain []clientv3.Op
	var plainKeys []string
	var firstErr error
	requeue := func(keys ...string) {
		w.mu.Lock()
		for _, k := range keys {
			if _, newer := w.pending[k]; !newer {
				w.pending[k] = batch[k]
			}
		}
		w.mu.Unlock()
	}
	for k, ch := range batch {
		switch {
		case ch.value == "":
			plain, plainKeys = append(plain, clientv3.OpDelete(k)), append(plainKeys, k)
		case ch.ifAbsent:
			_, err := d.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).Then(clientv3.OpPut(k, ch.value)).Commit()
			if err != nil {
				requeue(k)
				firstErr = cmpOr(firstErr, err)
			}
		default:
			plain, plainKeys = append(plain, clientv3.OpPut(k, ch.value)), append(plainKeys, k)
		}
	}
	for len(plain) > 0 {
		n := min(len(plain), maxTxnOps)
		if _, err := d.cli.Txn(ctx).Then(plain[:n]...).Commit(); err != nil {
			requeue(plainKeys[:n]...)
			firstErr = cmpOr(firstErr, err)
		}
		plain, plainKeys = plain[n:], plainKeys[n:]
	}
	return firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// ColdCopies lists the cold records of object id, sorted by tier. Like
// every read, it waits for etcd at most the operation timeout (then an
// *UnavailableError). The records outlive their writers: a node that is
// gone is still named.
func (d *Directory) ColdCopies(parent context.Context, id wire.ID) ([]ColdCopy, error) {
	if err := d.usable(); err != nil {
		return nil, err
	}
	ctx, cancel := d.opCtx(parent)
	defer cancel()
	resp, err := d.cli.Get(ctx, d.coldPrefix(id), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, d.failed(parent, fmt.Sprintf("cold copies of %s", id), err)
	}
	out := make([]ColdCopy, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		c, err := decodeColdRecord(strings.TrimPrefix(string(kv.Key), d.coldPrefix(id)), kv.Value)
		if err != nil {
			d.log.Warn("ignoring malformed cold record", "key", string(kv.Key), "err", err)
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// decodeColdRecord reads one cold record: the last segment of its key
// (the escaped tier, no slash) and its JSON value, which must name a
// tier.
func decodeColdRecord(keyTail string, value []byte) (ColdCopy, error) {
	var c ColdCopy
	if err := json.Unmarshal(value, &c); err != nil {
		return ColdCopy{}, err
	}
	switch {
	case c.Tier == "":
		return ColdCopy{}, errors.New("the record names no tier")
	case strings.Contains(keyTail, "/"):
		return ColdCopy{}, errors.New("the key has more segments than a cold record's")
	}
	return c, nil
}
