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
