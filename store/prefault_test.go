package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// clientMapped is the resident size of this process's writable mapping of
// the (one) store's arena.
func clientMapped(t *testing.T) uint64 {
	t.Helper()
	rss := testutil.MappedBytes(t, 0, "plasma-arena", "rw-s")
	if len(rss) != 1 {
		t.Fatalf("%d writable arena mappings in this process, want 1", len(rss))
	}
	return rss[0]
}

// Create maps a large object's range before handing it out: one madvise,
// not a page fault per 4 KiB as it is written.
func TestCreateMapsLargeObject(t *testing.T) {
	sock, _ := testutil.StartStoreProcess(t, "16MiB") // another process: only the client's mapping is here
	c := testutil.StoreClient(t, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got := clientMapped(t); got != 0 {
		t.Fatalf("a new client has %d bytes of the arena mapped", got)
	}
	const size = 3 << 20
	if _, err := c.Create(ctx, store.RandomObjectID(), size, nil); err != nil {
		t.Fatal(err)
	}
	if got := clientMapped(t); got < size {
		t.Fatalf("Create of %d bytes left %d mapped", size, got)
	}
}

// WithPrefault maps the whole arena in the background.
func TestWithPrefault(t *testing.T) {
	sock, _ := testutil.StartStoreProcess(t, "16MiB")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := store.Connect(ctx, sock, store.WithPrefault())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for clientMapped(t) != 16<<20 {
		if ctx.Err() != nil {
			t.Fatalf("after 30 s the client has %d of %d arena bytes mapped", clientMapped(t), 16<<20)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
