package stream_test

import (
	"sync"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// A SYNC's progress reports the size of the objects under way, so that a
// single large object shows how far across it is in bytes.
func TestProgressAnnouncesBytes(t *testing.T) {
	a := testutil.StartNode(t, "a", "64MiB")
	b := testutil.StartNode(t, "b", "64MiB")
	big := store.RandomObjectID()
	putID(t, b.Socket, big, testutil.Pattern(16<<20, 9), []byte("meta"))
	proxy := testutil.StartProxy(t, b.Addr, func(p *testutil.Proxy) { p.StallAt = 8 << 20 })

	var mu sync.Mutex
	var last stream.Progress
	done := make(chan error, 1)
	go func() {
		_, err := streamClient(t, a.Addr).SyncProgress(bg, []stream.PeerRequest{{Kind: stream.Copy, From: proxy.Addr, Objects: []stream.ObjectID{big}}},
			func(p stream.Progress) { mu.Lock(); last = p; mu.Unlock() })
		done <- err
	}()
	select {
	case <-proxy.Stalled():
	case <-time.After(20 * time.Second):
		t.Fatal("the transfer never reached the middle of the object")
	}
	want := uint64(16<<20 + 4)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		p := last
		mu.Unlock()
		if p.BytesAnnounced == want && p.Bytes > 0 && p.Bytes < want && p.Objects == 0 && p.ObjectsTotal == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress while stalled halfway: %+v, want %d bytes announced", p, want)
		}
	}
	proxy.Resume()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
