package storeserver_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/coldtier"
	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// The S3 server dies. A spill fails (the object, never persisted, is
// evicted as without a cold tier), a persist fails with a clear error and
// keeps the object in memory, a restore fails with a clear error and the
// persisted object stays listed; the store serves throughout, and once
// the server is back the persisted object restores intact.
func TestColdTierDown(t *testing.T) {
	s3 := testutil.StartS3(t)
	s := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 8 << 20,
		Cold: coldtier.Config{URL: s3.URL("down"), PartSize: 5 << 20}, ColdTimeout: 20 * time.Second})
	c := testutil.StoreClient(t, s.Socket)
	ctx := context.Background()
	kept := testutil.Pattern(3<<20, 5)
	idKept := putCold(t, c, kept)
	s3.Stop()

	// Restore while the tier is down.
	if _, _, err := getBytes(ctx, c, idKept); !errors.Is(err, store.ErrColdTier) || !strings.Contains(err.Error(), idKept.String()) {
		t.Fatalf("get while the tier is down: %v, want ErrColdTier naming the object", err)
	}
	// Persist while the tier is down.
	idLost, err := c.Put(ctx, testutil.Pattern(3<<20, 6), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Persist(ctx, idLost); !errors.Is(err, store.ErrColdTier) || !strings.Contains(err.Error(), "not persisted") {
		t.Fatalf("persist while the tier is down: %v, want ErrColdTier saying it is not persisted", err)
	}
	if in, ok := infoOf(t, c, idLost); !ok || in.State != store.StateSealed || in.Cold {
		t.Fatalf("after the failed persist: %+v, want in memory without a cold copy", in)
	}
	// Spill while the tier is down: room is still made.
	idNew, err := c.Put(ctx, testutil.Pattern(6<<20, 7), nil)
	if err != nil {
		t.Fatalf("put needing a spill while the tier is down: %v", err)
	}
	if _, ok := infoOf(t, c, idLost); ok {
		t.Fatal("an object whose spill failed is still listed")
	}
	if in, ok := infoOf(t, c, idKept); !ok || in.State != store.StateCold {
		t.Fatalf("persisted object while the tier is down: %+v, want still listed as cold", in)
	}

	s3.Start()
	if _, err := c.Evict(ctx, 8<<20); err != nil {
		t.Fatal(err)
	}
	data, _, err := getBytes(ctx, c, idKept)
	if err != nil || !bytes.Equal(data, kept) {
		t.Fatalf("persisted object after the tier came back: %v (equal %v)", err, bytes.Equal(data, kept))
	}
	_ = idNew
}

// The S3 server dies in the middle of a restore: the Get fails with a
// clear error within the tier timeout, and a Get after it comes back
// restores the object.
func TestColdTierDiesDuringRestore(t *testing.T) {
	s3 := testutil.StartS3(t)
	s := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 64 << 20,
		Cold: coldtier.Config{URL: s3.URL("mid"), PartSize: 5 << 20, Concurrency: 1}, ColdTimeout: 20 * time.Second})
	c := testutil.StoreClient(t, s.Socket)
	ctx := context.Background()
	big := testutil.Pattern(40<<20, 8)
	id := putCold(t, c, big)
	got := make(chan error, 1)
	go func() { _, _, err := getBytes(ctx, c, id); got <- err }()
	time.Sleep(20 * time.Millisecond) // somewhere in the restore, or before it: both must fail cleanly
	s3.Stop()
	if err := <-got; err != nil && !errors.Is(err, store.ErrColdTier) {
		t.Fatalf("get cut by the tier's death: %v, want ErrColdTier (or success if it finished first)", err)
	}
	s3.Start()
	if _, err := c.Evict(ctx, 64<<20); err != nil {
		t.Fatal(err)
	}
	data, _, err := getBytes(ctx, c, id)
	if err != nil || !bytes.Equal(data, big) {
		t.Fatalf("get after the tier came back: %v", err)
	}
}
