package store_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// A batch stores each object on its own: a taken id (in the store, or
// earlier in the batch) and an oversized object fail alone, the others
// are stored whole with their metadata and digest, and Keep leaves a
// reference.
func TestCreateAndSealBatchPerObject(t *testing.T) {
	sock, _ := testutil.StartStore(t, 64<<20)
	c, other := testutil.StoreClient(t, sock), testutil.StoreClient(t, sock)
	ctx := context.Background()
	taken := store.RandomObjectID()
	if err := other.CreateAndSeal(ctx, taken, []byte("first"), nil); err != nil {
		t.Fatal(err)
	}
	const n = 3000 // several requests of about a megabyte
	objs := make([]store.BatchObject, n)
	for i := range objs {
		data := testutil.Pattern(1024+i%7, byte(i))
		objs[i] = store.BatchObject{ID: store.RandomObjectID(), Data: data, Metadata: []byte{byte(i)}, Keep: i%2 == 0}
		if i%3 == 0 {
			objs[i].Digest = store.Digest{byte(i), 1} // any value: the store keeps what it is given
		}
	}
	objs[10].ID = taken
	objs[2000].ID = objs[1999].ID
	objs[500].Metadata = make([]byte, store.MaxMetadata+1)
	errs, err := c.CreateAndSealBatch(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		switch i {
		case 10, 2000:
			if !errors.Is(e, store.ErrObjectExists) || !strings.Contains(e.Error(), objs[i].ID.String()) {
				t.Errorf("object %d (id taken): %v, want ObjectExists naming it", i, e)
			}
		case 500:
			if !errors.Is(e, store.ErrTooLarge) {
				t.Errorf("object %d (metadata too large): %v, want ErrTooLarge", i, e)
			}
		default:
			if e != nil {
				t.Errorf("object %d: %v", i, e)
			}
		}
	}
	if o, err := other.GetOne(ctx, taken, 0); err != nil || string(o.Data) != "first" {
		t.Fatalf("the object that was there: %v", err)
	}
	for i, want := range objs {
		if i == 10 || i == 2000 || i == 500 {
			continue
		}
		o, err := other.GetOne(ctx, want.ID, 0)
		if err != nil {
			t.Fatalf("object %d: %v", i, err)
		}
		if !bytes.Equal(o.Data, want.Data) || !bytes.Equal(o.Metadata, want.Metadata) || !want.Digest.IsZero() && o.Digest != want.Digest {
			t.Fatalf("object %d: %d bytes, metadata %x, digest %s; want %d, %x, %s", i, len(o.Data), o.Metadata, o.Digest, len(want.Data), want.Metadata, want.Digest)
		}
		other.Release(ctx, want.ID)
		err = c.Release(ctx, want.ID)
		if want.Keep != (err == nil) {
			t.Fatalf("object %d kept=%v: release: %v", i, want.Keep, err)
		}
	}
}

// A full store fails each object that does not fit with a clear error,
// and stores the others; an object that failed is not in the store.
func TestCreateAndSealBatchStoreFull(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	objs := make([]store.BatchObject, 2000)
	for i := range objs {
		// Kept objects are pinned: nothing can be evicted for the rest.
		objs[i] = store.BatchObject{ID: store.RandomObjectID(), Data: testutil.Pattern(1024, byte(i)), Keep: true}
	}
	errs, err := c.CreateAndSealBatch(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	var stored int
	for i, e := range errs {
		has, _ := c.Contains(ctx, objs[i].ID)
		switch {
		case e == nil && has:
			stored++
		case errors.Is(e, store.ErrOutOfMemory) && !has:
			if !strings.Contains(e.Error(), objs[i].ID.String()) {
				t.Fatalf("object %d: %q does not name the object", i, e)
			}
		default:
			t.Fatalf("object %d: %v, in the store: %v", i, e, has)
		}
	}
	if stored == 0 || stored == len(objs) {
		t.Fatalf("%d of %d objects stored in a 1 MiB store", stored, len(objs))
	}
}

// More objects than one request may carry are split, and data beyond
// MaxInlineData fails alone without being sent.
func TestCreateAndSealBatchLimits(t *testing.T) {
	sock, _ := testutil.StartStore(t, 16<<20)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	objs := make([]store.BatchObject, store.MaxGetIDs+100)
	for i := range objs {
		objs[i].ID = store.RandomObjectID()
	}
	objs[7].Data = make([]byte, store.MaxInlineData+1)
	errs, err := c.CreateAndSealBatch(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if (i == 7) != (e != nil) || i == 7 && !errors.Is(e, store.ErrTooLarge) {
			t.Fatalf("object %d: %v", i, e)
		}
	}
	if has, _ := c.Contains(ctx, objs[len(objs)-1].ID); !has {
		t.Fatal("the last object (of the second request) is not in the store")
	}
	if has, _ := c.Contains(ctx, objs[7].ID); has {
		t.Fatal("the oversized object is in the store")
	}
}
