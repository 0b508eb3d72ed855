package store_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// BenchmarkContains is one request round trip to a store in another
// process.
func BenchmarkContains(b *testing.B) {
	sock, _ := testutil.StartStoreProcess(b, "64MiB")
	c := testutil.StoreClient(b, sock)
	ctx := context.Background()
	id := store.RandomObjectID()
	for b.Loop() {
		c.Contains(ctx, id)
	}
}

// BenchmarkGetRelease is Get+Release of a sealed 1 KiB object.
func BenchmarkGetRelease(b *testing.B) {
	sock, _ := testutil.StartStoreProcess(b, "64MiB")
	c := testutil.StoreClient(b, sock)
	ctx := context.Background()
	id, _ := c.Put(ctx, make([]byte, 1024), nil)
	ids := []store.ObjectID{id}
	for b.Loop() {
		c.Get(ctx, ids, 0)
		c.Release(ctx, id)
	}
}

// BenchmarkCreateAndSeal stores 1 KiB objects one request each.
func BenchmarkCreateAndSeal(b *testing.B) {
	sock, _ := testutil.StartStoreProcess(b, "256MiB")
	c := testutil.StoreClient(b, sock)
	ctx := context.Background()
	data := make([]byte, 1024)
	for b.Loop() {
		if err := c.CreateAndSeal(ctx, store.RandomObjectID(), data, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateAndSealBatch stores 1 KiB objects a thousand per call.
func BenchmarkCreateAndSealBatch(b *testing.B) {
	sock, _ := testutil.StartStoreProcess(b, "256MiB")
	c := testutil.StoreClient(b, sock)
	ctx := context.Background()
	objs := make([]store.BatchObject, 1000)
	for b.Loop() {
		for i := range objs {
			objs[i] = store.BatchObject{ID: store.RandomObjectID(), Data: make([]byte, 1024)}
		}
		if _, err := c.CreateAndSealBatch(ctx, objs); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		ids := make([]store.ObjectID, len(objs))
		for i := range objs {
			ids[i] = objs[i].ID
		}
		c.Delete(ctx, ids...)
		b.StartTimer()
	}
}

// A reply's payload is allocated at its own size: the mux once read every
// reply into a fresh 4 KiB buffer, so that a client making small requests
// allocated 4.5 KiB per round trip and ran the collector every few
// thousand requests.
func TestSmallRepliesAllocateLittle(t *testing.T) {
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	id := store.RandomObjectID()
	const n = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		if _, err := c.Contains(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 2048 {
		t.Fatalf("%d bytes allocated per Contains round trip, want under 2048", per)
	}
}
