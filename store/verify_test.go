package store_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// sealThenCorrupt creates and seals an object (with its digest when
// withDigest, else the store learns it by hashing), then returns the
// writable buffer Create gave: every client maps the arena writable, so
// it can still change the sealed bytes.
func sealThenCorrupt(t *testing.T, c *store.Client, id store.ObjectID, data []byte, withDigest bool) []byte {
	t.Helper()
	ctx := context.Background()
	buf, err := c.Create(ctx, id, uint64(len(data)), nil)
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, data)
	if withDigest {
		err = c.SealDigest(ctx, id, bao.Sum(data))
	} else {
		err = c.Seal(ctx, id)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	return buf
}

// A verified Get refuses an object whose sealed bytes another client
// overwrote in shared memory, while a plain Get returns them.
func TestGetVerifiedRefusesOverwrittenObject(t *testing.T) {
	sock, _ := testutil.StartStore(t, 8<<20)
	c := testutil.StoreClient(t, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, withDigest := range []bool{true, false} {
		data := testutil.Pattern(100<<10, 7)
		id := store.RandomObjectID()
		buf := sealThenCorrupt(t, c, id, data, withDigest)
		obj, err := c.GetVerified(ctx, id, 0) // intact: accepted
		if err != nil || !bytes.Equal(obj.Data, data) {
			t.Fatalf("digest given %v: verified get of an intact object: %v", withDigest, err)
		}
		c.Release(ctx, id)

		buf[50000] ^= 0xff // another client's write after Seal
		obj, err = c.GetOne(ctx, id, 0)
		if err != nil || obj.Data[50000] == data[50000] {
			t.Fatalf("digest given %v: plain get should return the overwritten bytes: %v", withDigest, err)
		}
		c.Release(ctx, id)
		_, err = c.GetVerified(ctx, id, 0)
		if !errors.Is(err, store.ErrIntegrity) || !strings.Contains(err.Error(), id.String()) {
			t.Fatalf("digest given %v: verified get of an overwritten object: %v", withDigest, err)
		}
		// The refused Get kept no reference: the object can be deleted.
		if errs, err := c.Delete(ctx, id); err != nil || errs[0] != nil {
			t.Fatalf("delete after a refused verified get: %v %v", err, errs)
		}
	}
}
