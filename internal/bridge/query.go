package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/plasmastream/plasmastream/store"
)

// ObjectStat is the reply to <prefix>.stat about an object.
type ObjectStat struct {
	Node         string         `json:"node"`
	ID           store.ObjectID `json:"id"`
	Hash         store.Digest   `json:"hash"`
	Size         uint64         `json:"size"`
	MetadataSize int            `json:"metadata_size"`
}

// NodeStat is the reply to <prefix>.stat with no payload.
type NodeStat struct {
	Node          string   `json:"node"`
	Addr          string   `json:"addr"`
	Prefix        string   `json:"prefix"`
	Capacity      uint64   `json:"capacity"`
	Publish       []string `json:"publish,omitempty"`
	Subscriptions []string `json:"subscriptions,omitempty"`
	Signed        bool     `json:"signed"`
}

// Holder is a node that holds an object, and how this node knows.
type Holder struct {
	Node string `json:"node"`
	Addr string `json:"addr"`
	Via  string `json:"via"` // "local", "directory" (etcd) or "announcement"
}

// Located is the reply to <prefix>.locate.
type Located struct {
	ID      store.ObjectID `json:"id"`
	Holders []Holder       `json:"holders"`
}

// statObject describes a sealed object of the store.
func statObject(ctx context.Context, st *store.Client, id store.ObjectID) (ObjectStat, error) {
	obj, err := st.GetOne(ctx, id, 0, store.Internal())
	if errors.Is(err, store.ErrObjectNotFound) {
		return ObjectStat{}, fmt.Errorf("object %s is not in this node's store", id)
	}
	if err != nil {
		return ObjectStat{}, fmt.Errorf("object %s: %w", id, err)
	}
	s := ObjectStat{ID: id, Hash: obj.Digest, Size: uint64(len(obj.Data)), MetadataSize: len(obj.Metadata)}
	st.Release(context.WithoutCancel(ctx), id)
	if s.Hash.IsZero() {
		if s.Hash, _, err = st.Outboard(ctx, id); err != nil {
			return ObjectStat{}, fmt.Errorf("object %s: its hash: %w", id, err)
		}
	}
	return s, nil
}

func (b *Bridge) handleStat(m *nats.Msg) any {
	if len(bytes.TrimSpace(m.Data)) == 0 {
		return b.useStore(func(st *store.Client) any {
			s := NodeStat{Node: b.cfg.Node, Addr: b.cfg.Addr, Prefix: b.cfg.Prefix, Capacity: st.Capacity(),
				Publish: b.cfg.Publish, Signed: b.cfg.Identity != nil}
			for _, sub := range b.cfg.Subscribe {
				s.Subscriptions = append(s.Subscriptions, sub.Subject)
			}
			return s
		})
	}
	id, _, err := ParseObject(string(m.Data))
	if err != nil {
		return failed(fmt.Errorf("stat: %w", err))
	}
	return b.useStore(func(st *store.Client) any {
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		defer cancel()
		s, err := statObject(ctx, st, id)
		if err != nil {
			return failed(fmt.Errorf("stat: %w", err))
		}
		s.Node = b.cfg.Node
		return s
	})
}

func (b *Bridge) handleLocate(m *nats.Msg) any {
	id, _, err := ParseObject(string(m.Data))
	if err != nil {
		return failed(fmt.Errorf("locate: %w", err))
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	r := Located{ID: id, Holders: []Holder{}}
	seen := map[string]bool{}
	add := func(h Holder) {
		if !seen[h.Node] {
			seen[h.Node] = true
			r.Holders = append(r.Holders, h)
		}
	}
	if st, release, err := b.cfg.Store(); err == nil {
		if ok, err := st.Contains(ctx, id); err == nil && ok {
			add(Holder{Node: b.cfg.Node, Addr: b.cfg.Addr, Via: "local"})
		}
		release()
	}
	if b.cfg.Holders != nil {
		if locs, err := b.cfg.Holders(ctx, id); err == nil {
			for _, l := range locs {
				add(Holder{Node: l.Node, Addr: l.Address, Via: "directory"})
			}
		}
	}
	for _, h := range b.announced(id) {
		add(h)
	}
	return r
}
