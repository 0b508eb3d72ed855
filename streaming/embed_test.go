package streaming_test

import (
	"sync"
	"testing"

	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/testnode"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/streaming"
)

// sink is a program's own streamer: it keeps the blocks it is given.
type sink struct {
	mu     sync.Mutex
	blocks []*streaming.Block
	last   uint64
}

func (s *sink) Stream(*sync.WaitGroup, <-chan struct{}) error { return nil }
func (s *sink) LastBlock() (uint64, error)                    { return s.last, nil }
func (s *sink) Close() error                                  { return nil }
func (s *sink) ListenBlock(b *streaming.Block) {
	s.mu.Lock()
	s.blocks = append(s.blocks, b)
	s.mu.Unlock()
}

func (s *sink) got() []*streaming.Block {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*streaming.Block(nil), s.blocks...)
}

// A program embedding a stream server adds its own streamer: it gets the
// start block (numbered after the highest block it already holds), then
// every change.
func TestEmbeddedStreamer(t *testing.T) {
	s := &sink{last: 41}
	n := testnode.Start(t, "emb", 1<<20, func(c *streamserver.Config) { c.Streamers = []streaming.StreamingService{s} })
	id := put(t, testutil.StoreClient(t, n.Socket), "x", "m")
	blocks := waitFor(t, "two blocks", s.got, func(bs []*streaming.Block) bool { return len(bs) >= 2 })
	if b := blocks[0]; b.Number != 42 || !b.Start || !b.Snapshot || len(b.Pairs) != 0 {
		t.Fatalf("first block %+v: want 42, start, an empty snapshot", b)
	}
	b := blocks[1]
	if b.Number != 43 || b.Start || len(b.Pairs) != 1 || string(b.Pairs[0].Key) != string(id[:]) || b.Pairs[0].StoreKey != streaming.StoreObjects {
		t.Fatalf("second block %+v: want 43 with the set of %s", b, hexID(id))
	}
}
