package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// syncer runs SYNC COPY from b into a over one client connection to a.
type syncer struct {
	a, b *node
	c    *stream.Client
	dst  *store.Client
}

func openSyncer(ctx context.Context, a, b *node) (*syncer, error) {
	c, err := stream.Connect(ctx, a.addr, a.opts...)
	if err != nil {
		return nil, err
	}
	dst, err := store.Connect(ctx, a.sock)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &syncer{a: a, b: b, c: c, dst: dst}, nil
}

func (s *syncer) close() {
	if s != nil {
		s.c.Close()
		s.dst.Close()
	}
}

// round copies ids from b into a, returns how long the SYNC took, and
// deletes them from a again.
func (s *syncer) round(ctx context.Context, ids []store.ObjectID) (time.Duration, error) {
	start := time.Now()
	res, err := s.c.Sync(ctx, []stream.PeerRequest{{Kind: stream.Copy, From: s.b.addr, Objects: ids}})
	if err != nil {
		return 0, fmt.Errorf("sync copy of %d objects from %s to %s: %w", len(ids), s.b.addr, s.a.addr, err)
	}
	d := time.Since(start)
	if res.Objects != uint64(len(ids)) {
		return d, fmt.Errorf("sync copied %d of %d objects", res.Objects, len(ids))
	}
	for i := 0; i < len(ids); i += store.MaxGetIDs {
		if _, err := s.dst.Delete(ctx, ids[i:min(i+store.MaxGetIDs, len(ids))]...); err != nil {
			return d, err
		}
	}
	return d, nil
}
