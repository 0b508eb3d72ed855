package store_test

import (
	"context"
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
