package storeserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
	}
}

func lastUses(t *testing.T, c *store.Client) map[store.ObjectID]store.ObjectInfo {
	t.Helper()
	infos, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[store.ObjectID]store.ObjectInfo{}
	for _, in := range infos {
		m[in.ID] = in
	}
	return m
}

// evictOneByte evicts the least recently used object and says which of
// ids are left.
func evictOneByte(t *testing.T, c *store.Client, ids ...store.ObjectID) []bool {
	t.Helper()
	ctx := context.Background()
	if _, err := c.Evict(ctx, 1); err != nil {
		t.Fatal(err)
	}
	left := make([]bool, len(ids))
	for i, id := range ids {
		left[i], _ = c.Contains(ctx, id)
	}
	return left
}

// The background hasher reads every object a second after its seal; that
// read is not a use. It once released objects through the normal path,
// which made them the most recently used: after A was used and B not, the
// hash of B made A the eviction victim.
func TestHashingIsNotAUse(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	a, b := store.RandomObjectID(), store.RandomObjectID()
	if err := c.PutID(ctx, a, make([]byte, 100), nil); err != nil { // no digest: the store hashes it
		t.Fatal(err)
	}
	if err := c.PutID(ctx, b, make([]byte, 200), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetOne(ctx, a, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx, a); err != nil {
		t.Fatal(err)
	}
	used := lastUses(t, c)
	waitFor(t, "both objects hashed", func() bool {
		m := lastUses(t, c)
		return !m[a].Digest.IsZero() && !m[b].Digest.IsZero()
	})
	hashed := lastUses(t, c)
	for _, id := range []store.ObjectID{a, b} {
		if !hashed[id].LastUse.Equal(used[id].LastUse) {
			t.Errorf("object %s: last use %v after hashing, %v before: hashing counted as a use", id, hashed[id].LastUse, used[id].LastUse)
		}
	}
	if left := evictOneByte(t, c, a, b); !left[0] || left[1] {
		t.Fatalf("evicting one byte left A=%v B=%v; want B (never used since its seal) gone", left[0], left[1])
	}
}

// An Outboard request and an internal Get (a stream server sending a
// copy) are not uses either; a plain Get is.
func TestInternalReadsAreNotUses(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	put := func() store.ObjectID {
		id := store.RandomObjectID()
		if err := c.PutID(ctx, id, make([]byte, 40<<10), nil); err != nil {
			t.Fatal(err)
		}
		return id
	}
	x, y := put(), put()
	if _, _, err := c.Outboard(ctx, x); err != nil { // hashes x now
		t.Fatal(err)
	}
	if _, err := c.GetOne(ctx, x, 0, store.Internal()); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx, x); err != nil {
		t.Fatal(err)
	}
	if left := evictOneByte(t, c, x, y); left[0] || !left[1] {
		t.Fatalf("after an Outboard and an internal Get of the older object, eviction left x=%v y=%v; want x gone", left[0], left[1])
	}
	// A plain Get makes an object the most recently used.
	z, w := put(), put()
	if _, err := c.GetOne(ctx, z, 0); err != nil {
		t.Fatal(err)
	}
	c.Release(ctx, z)
	if left := evictOneByte(t, c, y, z, w); left[0] || !left[1] || !left[2] {
		t.Fatalf("eviction left y=%v z=%v w=%v; want y (oldest) gone", left[0], left[1], left[2])
	}
	if left := evictOneByte(t, c, z, w); !left[0] || left[1] {
		t.Fatalf("eviction left z=%v w=%v; want w gone (z was used after it)", left[0], left[1])
	}
}

// CreateAndSeal with keep leaves the client a reference, as Create and
// Seal do: the object is not evicted until it is released. Without keep,
// it is evictable at once.
func TestCreateAndSealKeepHoldsAReference(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	kept, plain := store.RandomObjectID(), store.RandomObjectID()
	if err := c.CreateAndSealKeep(ctx, kept, []byte("kept"), nil, [32]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateAndSealDigest(ctx, plain, []byte("plain"), nil, [32]byte{2}); err != nil {
		t.Fatal(err)
	}
	infos := lastUses(t, c)
	if infos[kept].RefCount != 1 || infos[plain].RefCount != 0 {
		t.Fatalf("ref counts: kept %d, plain %d; want 1 and 0", infos[kept].RefCount, infos[plain].RefCount)
	}
	if _, err := c.Evict(ctx, 1<<20); err != nil {
		t.Fatal(err)
	}
	if left := evictOneByte(t, c, kept, plain); !left[0] || left[1] {
		t.Fatalf("after evicting everything evictable: kept present %v, plain present %v; want true, false", left[0], left[1])
	}
	if err := c.Release(ctx, kept); err != nil {
		t.Fatal(err)
	}
	if left := evictOneByte(t, c, kept); left[0] {
		t.Fatal("the released object was not evictable")
	}
}

// Evict counts the data and metadata of what it evicts, so empty objects
// add nothing and eviction goes on past them, as pyarrow's plasma store
// did. An empty object was once counted as its one-byte allocation:
// Evict(1) then stopped after the first empty object.
func TestEvictCountsObjectBytes(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	var ids []store.ObjectID
	for i := 0; i < 3; i++ {
		id := store.RandomObjectID()
		if err := c.PutID(ctx, id, nil, nil); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	last := store.RandomObjectID()
	if err := c.PutID(ctx, last, make([]byte, 100), make([]byte, 7)); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, last)
	freed, err := c.Evict(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if freed != 107 {
		t.Errorf("Evict(1) past three empty objects freed %d bytes, want 107 (the data and metadata of the fourth)", freed)
	}
	for i, id := range ids {
		if ok, _ := c.Contains(ctx, id); ok {
			t.Errorf("object %d (%s) is still in the store after Evict(1)", i, id)
		}
	}
	if freed, err := c.Evict(ctx, 1); err != nil || freed != 0 {
		t.Errorf("Evict(1) of an empty store: %d, %v; want 0, nil", freed, err)
	}
}
