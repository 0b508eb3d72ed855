package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/testutil"
)

// Put hands the store the outboard it built while hashing, so the store
// has it at once (it would otherwise build it a second after the seal, or
// when a peer first asks): a SetOutboard of garbage right after the Put is
// then a no-op, where before the store checked it and refused it.
func TestPutHandsOverOutboard(t *testing.T) {
	sock, _ := testutil.StartStore(t, 8<<20)
	c := testutil.StoreClient(t, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	data := make([]byte, 1<<20+5)
	for i := range data {
		data[i] = byte(i * 7)
	}
	id, err := c.Put(ctx, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetOutboard(ctx, id, make([]byte, bao.OutboardSize(uint64(len(data))))); err != nil {
		t.Fatalf("the store had no outboard right after Put: %v", err)
	}
	digest, outboard, err := c.Outboard(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bao.Parse(outboard, uint64(len(data)), digest); err != nil || string(digest[:len(id)]) != string(id[:]) {
		t.Fatalf("the store's outboard does not check against its digest %x (id %s): %v", digest, id, err)
	}
}
