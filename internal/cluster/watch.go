package cluster

import (
	"context"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Directory sections, as Watch reports them.
const (
	SectionNodes     = "nodes"     // key: node name; value: the node record
	SectionGroups    = "groups"    // key: group/node; value: as stored
	SectionLocations = "locations" // key: object id (hex)/node; value: the location record
)

// Change is one change of the directory as this node sees it.
type Change struct {
	Section string
	Key     string
	Value   []byte // nil for a delete
	Delete  bool
}

// Watch calls fn with every key of the directory as it is, then with every
// change, in etcd's order, until ctx ends or the directory closes. If
// etcd loses the history it would resume from (a compaction while this
// node was cut off), it reports the whole directory again (sets only: a
// key deleted meanwhile is not reported). fn runs on Watch's goroutine.
func (d *Directory) Watch(ctx context.Context, fn func(Change)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(d.ctx, cancel) // Close ends the watch
	defer stop()
	var rev int64
	for ctx.Err() == nil {
		if rev == 0 {
			resp, err := d.cli.Get(ctx, d.prefix, clientv3.WithPrefix())
			if err != nil {
				d.log.Debug("directory watch: list failed; retrying", "err", err)
				sleepCtx(ctx, time.Second)
				continue
			}
			for _, kv := range resp.Kvs {
				if c, ok := d.change(string(kv.Key), kv.Value, false); ok {
					fn(c)
				}
			}
			rev = resp.Header.Revision
		}
		for wr := range d.cli.Watch(clientv3.WithRequireLeader(ctx), d.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
			if wr.CompactRevision != 0 {
				rev = 0 // history lost: list again
				break
			}
			if err := wr.Err(); err != nil {
				break
			}
			for _, ev := range wr.Events {
				del := ev.Type == clientv3.EventTypeDelete
				val := ev.Kv.Value
				if del {
					val = nil
				}
				if c, ok := d.change(string(ev.Kv.Key), val, del); ok {
					fn(c)
				}
				rev = ev.Kv.ModRevision
			}
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

// change maps an etcd key to its section and key.
func (d *Directory) change(key string, value []byte, del bool) (Change, bool) {
	rest, ok := strings.CutPrefix(key, d.prefix)
	if !ok {
		return Change{}, false
	}
	section, k, ok := strings.Cut(rest, "/")
	if !ok {
		return Change{}, false
	}
	switch section {
	case "nodes":
		section = SectionNodes
	case "groups":
		section = SectionGroups
	case "objects":
		section = SectionLocations
	default:
		return Change{}, false
	}
	return Change{Section: section, Key: k, Value: value, Delete: del}, true
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
