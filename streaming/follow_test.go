package streaming_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/natsconn"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/streaming"
)

// follower runs src.ReadFrom(from, follow) in the background and keeps
// the block numbers it delivers.
type follower struct {
	mu     sync.Mutex
	blocks []uint64
	keys   []string
	cancel context.CancelFunc
	done   chan error
}

func follow(src streaming.BlockSource, from uint64) *follower {
	ctx, cancel := context.WithCancel(bg)
	f := &follower{cancel: cancel, done: make(chan error, 1)}
	go func() {
		f.done <- src.ReadFrom(ctx, from, true, func(b *streaming.ReadBlock) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.blocks = append(f.blocks, b.Number)
			for _, p := range b.Pairs {
				f.keys = append(f.keys, string(p.Key))
			}
			return nil
		})
	}()
	return f
}

func (f *follower) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...)
}

func (f *follower) stop(t *testing.T) []uint64 {
	f.cancel()
	if err := <-f.done; err != nil {
		t.Fatal(err)
	}
	return f.blocks
}

// commitBlocks drives svc with a committer: the start block, then one
// block per key.
func commitBlocks(t *testing.T, svc streaming.StreamingService, keys ...string) *streaming.Committer {
	c, err := streaming.NewCommitter(streaming.CommitterConfig{Node: "f", Interval: time.Hour, Services: []streaming.StreamingService{svc}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	quit := make(chan struct{})
	if err := svc.Stream(&wg, quit); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); close(quit); wg.Wait() })
	c.Snapshot(nil)
	for _, k := range keys {
		c.Set(streaming.StoreTransfers, []byte(k), []byte("v"))
		c.Flush()
	}
	return c
}

// A follower started before blocks are written gets each as it is
// committed, from the block it asked for, from a directory and from NATS.
func TestFollow(t *testing.T) {
	dir := t.TempDir()
	fileSvc, err := streaming.NewFileStreamingService(streaming.Options{streaming.OptStreamersFileWriteDir: dir}, nil, streaming.Env{Node: "f"})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := natsconn.Connect(bg, natsconn.Config{Servers: natsconn.Embedded, Listen: testutil.FreeAddr(t), Dir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	natsSvc, err := streaming.NewNATSStreamingService(streaming.Options{}, nil, streaming.Env{Node: "f", NATS: nc.NC})
	if err != nil {
		t.Fatal(err)
	}
	c := commitBlocks(t, fileSvc, "one")
	cn := commitBlocks(t, natsSvc, "one")
	dr, err := streaming.OpenDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first blocks", func() []uint64 { b, _ := dr.Blocks(); return b }, func(b []uint64) bool { return len(b) == 2 })
	nr, err := streaming.OpenNATS(bg, nc.ClientURL(), streaming.NATSReaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer nr.Close()
	fd, fn := follow(dr, 2), follow(nr, 2)
	for _, k := range []string{"two", "three"} {
		c.Set(streaming.StoreTransfers, []byte(k), []byte("v"))
		c.Flush()
		cn.Set(streaming.StoreTransfers, []byte(k), []byte("v"))
		cn.Flush()
	}
	for _, f := range []*follower{fd, fn} {
		waitFor(t, "the new blocks", f.seen, func(k []string) bool { return len(k) == 3 })
		if got := f.stop(t); len(got) != 3 || got[0] != 2 || got[2] != 4 {
			t.Fatalf("followed blocks %v, want 2 3 4", got)
		}
	}
}
