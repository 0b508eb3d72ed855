package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// The store keeps a bao outboard beside each object: built once (at once
// when asked, else by the background hasher), or handed over by a client
// and checked against the digest.
func TestOutboards(t *testing.T) {
	sock, _ := testutil.StartStore(t, 64<<20)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	for _, size := range []int{0, 1, 16 << 10, 16<<10 + 1, 3<<20 + 12345} {
		data := testutil.Pattern(size, 3)
		want, root := bao.Build(data)
		// Sealed without a digest: the store hashes it when asked.
		id := store.RandomObjectID()
		buf, err := c.Create(ctx, id, uint64(size), nil)
		if err != nil {
			t.Fatal(err)
		}
		copy(buf, data)
		if err := c.Seal(ctx, id); err != nil {
			t.Fatal(err)
		}
		digest, outboard, err := c.Outboard(ctx, id)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if digest != root || !bytes.Equal(outboard, want) {
			t.Fatalf("%d bytes: digest %x, %d-byte outboard; want %x and the %d bytes bao.Build gives", size, digest, len(outboard), root, len(want))
		}
		if _, err := bao.Parse(outboard, uint64(size), digest); err != nil {
			t.Fatal(err)
		}
		c.Release(ctx, id)
	}

	// Handed over: a wrong outboard is refused, the right one kept.
	data := testutil.Pattern(1<<20, 9)
	want, root := bao.Build(data)
	id := store.RandomObjectID()
	buf, err := c.Create(ctx, id, uint64(len(data)), nil)
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, data)
	if err := c.SealDigest(ctx, id, root); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(want)
	bad[100] ^= 1
	if err := c.SetOutboard(ctx, id, bad); !errors.Is(err, store.ErrInvalidRequest) {
		t.Fatalf("a corrupt outboard: %v", err)
	}
	if err := c.SetOutboard(ctx, id, want[:len(want)-64]); !errors.Is(err, store.ErrInvalidRequest) {
		t.Fatalf("a short outboard: %v", err)
	}
	if err := c.SetOutboard(ctx, id, want); err != nil {
		t.Fatal(err)
	}
	if d, ob, err := c.Outboard(ctx, id); err != nil || d != root || !bytes.Equal(ob, want) {
		t.Fatalf("outboard after SetOutboard: %v", err)
	}
	if err := c.SetOutboard(ctx, store.RandomObjectID(), want); !errors.Is(err, store.ErrObjectNotFound) {
		t.Fatalf("outboard of a missing object: %v", err)
	}
	if _, _, err := c.Outboard(ctx, store.RandomObjectID()); !errors.Is(err, store.ErrObjectNotFound) {
		t.Fatalf("outboard of a missing object: %v", err)
	}
}
