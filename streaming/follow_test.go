package streaming_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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

// The NATS streamer's messages: block N's data on PREFIX.NODE.STORE with
// Nats-Msg-Id NODE/N/STORE/PART, then its commit on PREFIX.NODE._commit;
// a block published again (a retry, another run) is stored once.
func TestNATSSubjectsAndRetry(t *testing.T) {
	nc, err := natsconn.Connect(bg, natsconn.Config{Servers: natsconn.Embedded, Listen: testutil.FreeAddr(t), Dir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	opts := streaming.Options{streaming.OptStreamersNATSPrefix: "st"}
	svc, err := streaming.NewNATSStreamingService(opts, nil, streaming.Env{Node: "n.1", NATS: nc.NC})
	if err != nil {
		t.Fatal(err)
	}
	c := commitBlocks(t, svc, "one", "two") // blocks 1 (start), 2, 3
	js, err := jetstream.New(nc.NC)
	if err != nil {
		t.Fatal(err)
	}
	st := waitFor(t, "the stream's messages", func() jetstream.Stream {
		st, err := js.Stream(bg, streaming.DefaultNATSStream)
		if err != nil {
			return nil
		}
		if info, err := st.Info(bg); err != nil || info.State.Msgs != 5 { // 3 commits, 2 data messages
			return nil
		}
		return st
	}, func(st jetstream.Stream) bool { return st != nil })
	msg, err := st.GetLastMsgForSubject(bg, "st.n_1.transfers")
	if err != nil {
		t.Fatal(err)
	}
	if id := msg.Header.Get("Nats-Msg-Id"); id != "n_1/3/transfers/0" || msg.Header.Get("Plasma-Block") != "3" {
		t.Fatalf("the last data message: headers %v, want Nats-Msg-Id n_1/3/transfers/0 and Plasma-Block 3", msg.Header)
	}
	if msg, err = st.GetLastMsgForSubject(bg, "st.n_1._commit"); err != nil || msg.Header.Get("Nats-Msg-Id") != "n_1/3/commit" {
		t.Fatalf("the last commit: %v %v", msg, err)
	}
	c.Close()

	// Block 2 published again by a new run (its publish retried): the
	// stream stores nothing more, and the node's blocks read back once.
	again, err := streaming.NewNATSStreamingService(opts, nil, streaming.Env{Node: "n.1", NATS: nc.NC})
	if err != nil {
		t.Fatal(err)
	}
	if last, err := again.LastBlock(); err != nil || last != 3 {
		t.Fatalf("LastBlock: %d %v, want 3", last, err)
	}
	var wg sync.WaitGroup
	quit := make(chan struct{})
	again.Stream(&wg, quit)
	again.ListenBlock(&streaming.Block{Number: 2, Node: "n.1", Time: time.Now(),
		Pairs: []streaming.StoreKVPair{{StoreKey: streaming.StoreTransfers, Key: []byte("one"), Value: []byte("v")}}})
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	close(quit)
	wg.Wait()
	info, err := st.Info(bg)
	if err != nil || info.State.Msgs != 5 {
		t.Fatalf("after block 2 was published again the stream holds %d messages, want 5 (%v)", info.State.Msgs, err)
	}
	r, err := streaming.NewNATSReader(bg, nc.NC, streaming.NATSReaderConfig{Prefix: "st"})
	if err != nil {
		t.Fatal(err)
	}
	var nums []uint64
	if err := r.ReadFrom(bg, 0, false, func(b *streaming.ReadBlock) error { nums = append(nums, b.Number); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(nums) != 3 || nums[0] != 1 || nums[2] != 3 {
		t.Fatalf("blocks read back %v, want 1 2 3", nums)
	}
}

// A directory written by runs with output-metadata on and off: the data
// files without meta files are committed blocks too, except the highest,
// which may still be waiting for its meta file; a block whose writer was
// killed between its two renames is read once a later block exists.
func TestDirReaderMixedMetadata(t *testing.T) {
	dir := t.TempDir()
	run := func(meta bool, keys ...string) {
		svc, err := streaming.NewFileStreamingService(streaming.Options{streaming.OptStreamersFileWriteDir: dir,
			streaming.OptStreamersFileOutputMetadata: meta, streaming.OptStreamersFileFsync: false}, nil, streaming.Env{Node: "m"})
		if err != nil {
			t.Fatal(err)
		}
		if err := commitBlocks(t, svc, keys...).Close(); err != nil {
			t.Fatal(err)
		}
	}
	blocks := func() []uint64 {
		r, err := streaming.OpenDir(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.Blocks()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	want := func(w ...uint64) {
		t.Helper()
		if got := blocks(); !slices.Equal(got, w) {
			t.Fatalf("committed blocks %v, want %v", got, w)
		}
	}
	run(true, "a")  // blocks 1, 2 with meta
	run(false, "b") // 3, 4 without
	want(1, 2, 3)
	run(true, "c") // 5, 6 with meta
	want(1, 2, 3, 4, 5, 6)
	// Killed between the renames of block 6: its meta file never came.
	if err := os.Remove(filepath.Join(dir, "block-6-meta")); err != nil {
		t.Fatal(err)
	}
	want(1, 2, 3, 4, 5)
	run(true) // 7 (a start block)
	want(1, 2, 3, 4, 5, 6, 7)
}
