package stream_test

import (
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// The receiver stores small objects in batches, but never keeps a
// verified one waiting for the network: while the sender stalls in the
// middle of a large object, the small objects sent before it are already
// in the destination store.
func TestSmallObjectsStoredWhileTheCopyStalls(t *testing.T) {
	a := testutil.StartNode(t, "a", "64MiB")
	b := testutil.StartNode(t, "b", "64MiB")
	var ids []store.ObjectID
	for i := range 50 {
		id := store.RandomObjectID()
		putID(t, b.Socket, id, testutil.Pattern(4096, byte(i)), []byte{byte(i)})
		ids = append(ids, id)
	}
	big := store.RandomObjectID()
	putID(t, b.Socket, big, testutil.Pattern(8<<20, 3), nil)
	proxy := testutil.StartProxy(t, b.Addr)
	proxy.StallAt = 4 << 20 // in the middle of the big object

	done := make(chan error, 1)
	go func() {
		_, err := streamClient(t, a.Addr).Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: proxy.Addr, Objects: append(ids, big)}})
		done <- err
	}()
	select {
	case <-proxy.Stalled():
	case <-time.After(20 * time.Second):
		t.Fatal("the transfer never reached the middle of the big object")
	}
	dst := testutil.StoreClient(t, a.Socket)
	objs, err := dst.Get(bg, ids, 20*time.Second) // waits for them, with a deadline
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range objs {
		if o == nil {
			t.Fatalf("small object %d is not in the destination store while the big one stalls", i)
		}
	}
	dst.Release(bg, ids...)
	proxy.Resume()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("SYNC did not end")
	}
	mustHave(t, a.Socket, ids[49], testutil.Pattern(4096, 49), []byte{49})
	mustHave(t, a.Socket, big, testutil.Pattern(8<<20, 3), nil)
}
