package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

func TestPutGetRoundTrip(t *testing.T) {
	sock, _ := testutil.StartStore(t, 8<<20)
	c := testutil.StoreClient(t, sock)
	other := testutil.StoreClient(t, sock)
	ctx := context.Background()
	for _, size := range []int{0, 1, 1024, 64 << 10, 64<<10 + 1, 3 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data, meta := testutil.Pattern(size, byte(size)), []byte(fmt.Sprintf(`{"size":%d}`, size))
			id, err := c.Put(ctx, data, meta)
			if err != nil {
				t.Fatal(err)
			}
			if id != store.ContentID(data) {
				t.Fatalf("Put id %s, want content id %s", id, store.ContentID(data))
			}
			if again, err := c.Put(ctx, data, meta); err != nil || again != id {
				t.Fatalf("second Put of the same bytes: %s, %v", again, err)
			}
			o, err := other.GetOne(ctx, id, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(o.Data, data) || !bytes.Equal(o.Metadata, meta) {
				t.Fatalf("got %d data bytes / %q, want %d / %q", len(o.Data), o.Metadata, len(data), meta)
			}
			if err := other.Release(ctx, id); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestUnsealedInvisibleUntilSeal(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	creator, reader := testutil.StoreClient(t, sock), testutil.StoreClient(t, sock)
	ctx := context.Background()
	id := store.RandomObjectID()
	buf, err := creator.Create(ctx, id, 100, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, "hello")
	if ok, _ := reader.Contains(ctx, id); ok {
		t.Fatal("unsealed object visible to Contains")
	}
	if objs, _ := reader.Get(ctx, []store.ObjectID{id}, 0); objs[0] != nil {
		t.Fatal("unsealed object returned by a polling Get")
	}
	if err := creator.Seal(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ok, _ := reader.Contains(ctx, id); !ok {
		t.Fatal("sealed object not visible")
	}
	o, err := reader.GetOne(ctx, id, 0)
	if err != nil || string(o.Data[:5]) != "hello" || string(o.Metadata) != "m" {
		t.Fatalf("get after seal: %v %q %q", err, o.Data[:5], o.Metadata)
	}
}

func TestErrors(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	a, b := testutil.StoreClient(t, sock), testutil.StoreClient(t, sock)
	ctx := context.Background()
	sealed, _ := a.Put(ctx, []byte("sealed"), nil)
	unsealed := store.RandomObjectID()
	if _, err := a.Create(ctx, unsealed, 10, nil); err != nil {
		t.Fatal(err)
	}
	missing := store.RandomObjectID()
	cases := []struct {
		name string
		op   func() error
		want error
	}{
		{"seal twice", func() error { return a.Seal(ctx, sealed) }, store.ErrAlreadySealed},
		{"seal by another client", func() error { return b.Seal(ctx, unsealed) }, store.ErrNotCreator},
		{"seal missing", func() error { return a.Seal(ctx, missing) }, store.ErrObjectNotFound},
		{"abort by another client", func() error { return b.Abort(ctx, unsealed) }, store.ErrNotCreator},
		{"abort sealed", func() error { return a.Abort(ctx, sealed) }, store.ErrAlreadySealed},
		{"abort missing", func() error { return a.Abort(ctx, missing) }, store.ErrObjectNotFound},
		{"release unreferenced", func() error { return b.Release(ctx, sealed) }, store.ErrNotReferenced},
		{"create existing sealed", func() error { _, err := b.Create(ctx, sealed, 1, nil); return err }, store.ErrObjectExists},
		{"create existing unsealed", func() error { _, err := b.Create(ctx, unsealed, 1, nil); return err }, store.ErrObjectExists},
		{"create larger than the store", func() error { _, err := a.Create(ctx, missing, 2<<20, nil); return err }, store.ErrOutOfMemory},
		{"metadata too large", func() error { _, err := a.Create(ctx, missing, 1, make([]byte, store.MaxMetadata+1)); return err }, store.ErrTooLarge},
		{"delete missing", func() error { errs, err := a.Delete(ctx, missing); return errors.Join(err, errs[0]) }, store.ErrObjectNotFound},
		{"delete unsealed", func() error { errs, err := a.Delete(ctx, unsealed); return errors.Join(err, errs[0]) }, store.ErrObjectNotSealed},
		{"get one missing", func() error { _, err := a.GetOne(ctx, missing, 0); return err }, store.ErrObjectNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), "") || len(err.Error()) < 10 {
				t.Fatalf("error %q is not a sentence", err)
			}
		})
	}
	// Exactly 64 KiB of metadata is allowed.
	if _, err := a.Create(ctx, missing, 1, make([]byte, store.MaxMetadata)); err != nil {
		t.Fatalf("64 KiB metadata: %v", err)
	}
	// The store still serves both clients normally.
	if ok, err := b.Contains(ctx, sealed); !ok || err != nil {
		t.Fatalf("store unhealthy after errors: %v %v", ok, err)
	}
}

func TestDeferredDelete(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	a, b := testutil.StoreClient(t, sock), testutil.StoreClient(t, sock)
	ctx := context.Background()
	id, _ := a.Put(ctx, testutil.Pattern(1000, 1), nil)
	o, err := b.GetOne(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := a.Delete(ctx, id)
	if err != nil || errs[0] != nil {
		t.Fatalf("delete of an object in use: %v %v", err, errs)
	}
	// Deletion is pending: new readers no longer see it, the holder still can.
	if ok, _ := a.Contains(ctx, id); ok {
		t.Fatal("object pending deletion still visible")
	}
	if !bytes.Equal(o.Data, testutil.Pattern(1000, 1)) {
		t.Fatal("holder's view changed before release")
	}
	if st, _ := a.Stats(ctx); st.Objects != 1 {
		t.Fatalf("object freed while in use: %+v", st)
	}
	if err := b.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.Stats(ctx); st.Objects != 0 || st.Used != 0 {
		t.Fatalf("object not freed at last release: %+v", st)
	}
}

func TestEvictionIsLRU(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	var ids []store.ObjectID
	for i := range 3 {
		id, err := c.Put(ctx, testutil.Pattern(300<<10, byte(i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// Touch the oldest: it becomes the most recently used.
	if _, err := c.GetOne(ctx, ids[0], 0); err != nil {
		t.Fatal(err)
	}
	c.Release(ctx, ids[0])
	// A fourth object needs room: the least recently used (ids[1]) goes.
	if _, err := c.Put(ctx, testutil.Pattern(300<<10, 9), nil); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, true} {
		if ok, _ := c.Contains(ctx, ids[i]); ok != want {
			t.Errorf("object %d present=%v, want %v", i, ok, want)
		}
	}
	// Evict frees least recently used first, and reports the bytes.
	freed, err := c.Evict(ctx, 1)
	if err != nil || freed < 300<<10 {
		t.Fatalf("evict: %d %v", freed, err)
	}
	if ok, _ := c.Contains(ctx, ids[2]); ok {
		t.Error("Evict did not take the least recently used object")
	}
	st, _ := c.Stats(ctx)
	if st.Evictions != 2 {
		t.Errorf("evictions = %d, want 2", st.Evictions)
	}
}

func TestOutOfMemoryWhenPinned(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	id := store.RandomObjectID()
	if _, err := c.Create(ctx, id, 700<<10, nil); err != nil { // unsealed: pinned
		t.Fatal(err)
	}
	_, err := c.Create(ctx, store.RandomObjectID(), 400<<10, nil)
	if !errors.Is(err, store.ErrOutOfMemory) {
		t.Fatalf("got %v, want out of memory", err)
	}
	for _, want := range []string{"409600", "capacity 1048576"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	c.Abort(ctx, id)
	if _, err := c.Create(ctx, store.RandomObjectID(), 400<<10, nil); err != nil {
		t.Fatalf("after abort: %v", err)
	}
}

// An empty store of capacity C holds one object of C bytes.
func TestWholeCapacityObject(t *testing.T) {
	const capacity = 4 << 20
	sock, _ := testutil.StartStore(t, capacity)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	id := store.RandomObjectID()
	buf, err := c.Create(ctx, id, capacity-100, make([]byte, 100))
	if err != nil {
		t.Fatal(err)
	}
	buf[len(buf)-1] = 1
	if err := c.Seal(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// Fragmented free space is compacted rather than reported as "store full"
// or paid for by evictions, and moved objects keep their bytes.
func TestCompactionInsteadOfFalseFull(t *testing.T) {
	const capacity = 1 << 20
	sock, _ := testutil.StartStore(t, capacity)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	var keep, drop []store.ObjectID
	for i := range 16 { // 16 × 64 KiB fills the store
		data := testutil.Pattern(64<<10-64, byte(i))
		id, err := c.Put(ctx, data, []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			keep = append(keep, id)
		} else {
			drop = append(drop, id)
		}
	}
	// Deleted only now, so that no later Put reuses a hole.
	if _, err := c.Delete(ctx, drop...); err != nil {
		t.Fatal(err)
	}
	st, _ := c.Stats(ctx)
	if st.LargestFree >= 128<<10 {
		t.Fatalf("setup did not fragment the store: %+v", st)
	}
	// Half the store is free, in 64 KiB holes: a 512 KiB object fits only
	// after compaction.
	if _, err := c.Put(ctx, testutil.Pattern(512<<10, 99), nil); err != nil {
		t.Fatalf("512 KiB into a half-free store: %v", err)
	}
	st, _ = c.Stats(ctx)
	if st.Evictions != 0 || st.Compactions == 0 {
		t.Fatalf("want a compaction and no eviction: %+v", st)
	}
	for i, id := range keep {
		o, err := c.GetOne(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(o.Data, testutil.Pattern(64<<10-64, byte(2*i))) || o.Metadata[0] != byte(2*i) {
			t.Fatalf("object %d corrupted by compaction", i)
		}
		c.Release(ctx, id)
	}
}

func TestDisconnectReleasesEverything(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	observer := testutil.StoreClient(t, sock)
	ctx := context.Background()
	c, err := store.Connect(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := c.Put(ctx, testutil.Pattern(1000, 3), nil)
	if _, err := c.GetOne(ctx, sealed, 0); err != nil {
		t.Fatal(err)
	}
	unsealed := store.RandomObjectID()
	if _, err := c.Create(ctx, unsealed, 5000, nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, func() bool {
		st, _ := observer.Stats(ctx)
		return st.Objects == 1 && st.Pinned == 0 && st.Clients == 1
	})
	infos, _ := observer.List(ctx)
	if len(infos) != 1 || infos[0].ID != sealed || infos[0].RefCount != 0 {
		t.Fatalf("after disconnect: %+v", infos)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Every sealed object gets its BLAKE3 digest — the value b3sum prints —
// even when the client sealed it without one: the store hashes it in the
// background.
func TestEverySealedObjectGetsItsDigest(t *testing.T) {
	sock, _ := testutil.StartStore(t, 8<<20)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	data := testutil.Pattern(3<<20+17, 5)
	id := store.RandomObjectID()
	if err := c.PutID(ctx, id, data, nil); err != nil { // no digest given
		t.Fatal(err)
	}
	want := blake3.Sum256(data)
	waitFor(t, func() bool {
		infos, _ := c.List(ctx)
		return len(infos) == 1 && infos[0].Digest == want
	})
	o, err := c.GetOne(ctx, id, 0)
	if err != nil || o.Digest.IsZero() || o.Digest != want {
		t.Fatalf("Get does not carry the digest: %v", err)
	}
	c.Release(ctx, id)
}
