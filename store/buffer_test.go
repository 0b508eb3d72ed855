package store_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A client does not keep its largest request's buffer (up to 64 MiB)
// while it idles.
func TestClientDropsLargeRequestBuffers(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	const clients, size = 4, 16 << 20
	var cs []*store.Client
	for range clients {
		cs = append(cs, testutil.StoreClient(t, sock))
	}
	before := liveHeap()
	for _, c := range cs {
		// An outboard for an object that is not there: refused, and the
		// request's bytes are no longer needed.
		if err := c.SetOutboard(context.Background(), store.RandomObjectID(), make([]byte, size)); err == nil {
			t.Fatal("outboard of a missing object accepted")
		}
	}
	if grown := int64(liveHeap()) - int64(before); grown > 4<<20 {
		t.Fatalf("%d idle clients that each sent a %d-byte request hold %d bytes of heap; want under 4 MiB", clients, size, grown)
	}
}
