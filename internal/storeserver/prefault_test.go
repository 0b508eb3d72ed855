package storeserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// storeMapped is the resident size of the store process's writable
// mapping of its arena (0 before the store has mapped it: its socket
// accepts connections from the moment it is bound).
func storeMapped(t *testing.T, pid int) uint64 {
	t.Helper()
	rss := testutil.MappedBytes(t, pid, "plasma-arena", "rw-s")
	if len(rss) == 0 {
		return 0
	}
	if len(rss) != 1 {
		t.Fatalf("%d writable arena mappings in the store, want 1", len(rss))
	}
	return rss[0]
}

// A store maps its whole arena in the background once it serves, so that
// the kernel zeroes the reserved pages there, not in a client's first put.
func TestPrefaultsArena(t *testing.T) {
	const size = 16 << 20
	_, cmd := testutil.StartStoreProcess(t, "16MiB")
	deadline := time.Now().Add(30 * time.Second)
	for storeMapped(t, cmd.Process.Pid) != size {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the store has %d of %d arena bytes mapped", storeMapped(t, cmd.Process.Pid), size)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --no-prefault leaves the pages to the first write: after a put, only
// what was written is mapped.
func TestNoPrefault(t *testing.T) {
	sock, cmd := testutil.StartStoreProcess(t, "16MiB", "--no-prefault")
	c := testutil.StoreClient(t, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.CreateAndSeal(ctx, store.RandomObjectID(), make([]byte, 1024), nil); err != nil {
		t.Fatal(err)
	}
	if got := storeMapped(t, cmd.Process.Pid); got >= 16<<20 {
		t.Fatalf("with --no-prefault the store mapped %d bytes of its arena", got)
	}
}
