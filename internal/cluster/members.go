package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Members follows the registered nodes with a watch, so that a lookup by
// key costs no round trip to etcd: a stream server checks a peer's key
// against it during the TLS handshake (docs/trust.md, "Trust in a
// cluster"). A node's record vanishes with its lease, so a node that dies
// or leaves stops being a member within the lease TTL.
type Members struct {
	d        *Directory
	onChange func()

	mu    sync.RWMutex
	byKey map[string]Node // registered nodes that published a key
	ready bool            // the first listing arrived

	done chan struct{}
}

// WatchMembers starts following the node records until the directory
// closes. onChange (may be nil) is called, from the watching goroutine,
// after every change of the members' keys, including removals.
func (d *Directory) WatchMembers(onChange func()) *Members {
	m := &Members{d: d, onChange: onChange, byKey: map[string]Node{}, done: make(chan struct{})}
	go m.run(d.ctx)
	return m
}

// ByKey returns the live registration that published key (64 hex).
func (m *Members) ByKey(key string) (Node, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, ok := m.byKey[strings.ToLower(key)]
	return n, ok
}

// Ready reports whether the first listing of the nodes arrived.
func (m *Members) Ready() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.ready
}

// Done is closed when the watch has stopped (the directory closed).
func (m *Members) Done() <-chan struct{} { return m.done }

// run lists the nodes, then watches for changes from the listing's
// revision; a broken or compacted watch starts over with a new listing.
func (m *Members) run(ctx context.Context) {
	defer close(m.done)
	b := backoff{min: 100 * time.Millisecond, max: 2 * time.Second}
	prefix := m.d.prefix + "nodes/"
	for ctx.Err() == nil {
		rev, err := m.list(ctx, prefix)
		if err == nil {
			b.reset()
			err = m.watch(ctx, prefix, rev+1)
		}
		if ctx.Err() != nil {
			return
		}
		m.d.log.Debug("directory: watching the members again", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(b.next()):
		}
	}
}

// list replaces the members with etcd's current records.
func (m *Members) list(ctx context.Context, prefix string) (int64, error) {
	rctx, cancel := m.d.opCtx(ctx)
	defer cancel()
	resp, err := m.d.cli.Get(rctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	byKey := map[string]Node{}
	for _, kv := range resp.Kvs {
		if n, ok := m.parse(kv.Key, kv.Value); ok {
			byKey[n.Key] = n
		}
	}
	m.mu.Lock()
	m.byKey, m.ready = byKey, true
	m.mu.Unlock()
	m.changed()
	return resp.Header.Revision, nil
}

// watch applies changes until the watch ends.
func (m *Members) watch(ctx context.Context, prefix string, from int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range m.d.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from), clientv3.WithPrevKV()) {
		if err := resp.Err(); err != nil {
			return err
		}
		m.mu.Lock()
		for _, ev := range resp.Events {
			// A record replaced or deleted withdraws the key it had.
			if ev.PrevKv != nil {
				if old, ok := m.parse(ev.PrevKv.Key, ev.PrevKv.Value); ok && m.byKey[old.Key].Name == old.Name {
					delete(m.byKey, old.Key)
				}
			}
			if ev.Type == clientv3.EventTypePut {
				if n, ok := m.parse(ev.Kv.Key, ev.Kv.Value); ok {
					m.byKey[n.Key] = n
				}
			}
		}
		m.mu.Unlock()
		m.changed()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("watch ended")
}

// parse reads a node record that carries a well-formed key.
func (m *Members) parse(key, value []byte) (Node, bool) {
	n, ok, err := parseMember(value)
	switch {
	case err != nil:
		m.d.log.Warn("ignoring malformed node record", "key", string(key), "err", err)
	case !ok && n.Key != "":
		m.d.log.Warn("ignoring a node record's malformed key", "node", n.Name)
	}
	return n, ok
}

// parseMember decodes a node record read from etcd: ok when it names a
// node and publishes a well-formed key (then in lower case, as ByKey looks
// it up); err when it is not a node record at all.
func parseMember(value []byte) (n Node, ok bool, err error) {
	if n, err = parseNode(value); err != nil {
		return n, false, err
	}
	if !validKey(n.Key) {
		return n, false, nil
	}
	n.Key = strings.ToLower(n.Key)
	return n, true, nil
}

func (m *Members) changed() {
	if m.onChange != nil {
		m.onChange()
	}
}

// validKey accepts a public key as 64 hex digits.
func validKey(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
