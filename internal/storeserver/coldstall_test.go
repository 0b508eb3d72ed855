package storeserver_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/coldtier"
	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// A spill to a tier that stops answering holds only the client whose
// Create needs the room: other clients put, get, list and delete
// meanwhile. When the tier answers again the spill completes and the
// waiting Create succeeds.
func TestColdSpillDoesNotStallOthers(t *testing.T) {
	s3 := testutil.StartS3(t)
	s := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 16 << 20,
		Cold: coldtier.Config{URL: s3.URL("stall"), PartSize: 5 << 20}, ColdTimeout: 2 * time.Minute})
	ctx := context.Background()
	a := testutil.StoreClient(t, s.Socket)
	big := testutil.Pattern(10<<20, 12)
	idBig, err := a.Put(ctx, big, nil)
	if err != nil {
		t.Fatal(err)
	}
	s3.Pause() // hung: accepts, never answers
	created := make(chan error, 1)
	go func() { _, err := a.Put(ctx, testutil.Pattern(10<<20, 13), nil); created <- err }() // needs idBig spilled
	b := testutil.StoreClient(t, s.Socket)
	waitFor(t, "the spill to start", func() bool { in, _ := infoOf(t, b, idBig); return in.RefCount == 1 })

	small, err := b.Put(ctx, []byte("meanwhile"), nil)
	if err != nil {
		t.Fatalf("put by another client during the stalled spill: %v", err)
	}
	if data, _, err := getBytes(ctx, b, small); err != nil || string(data) != "meanwhile" {
		t.Fatalf("get by another client during the stalled spill: %v", err)
	}
	if in, ok := infoOf(t, b, idBig); !ok || in.State != store.StateSealed || in.RefCount != 1 {
		t.Fatalf("object being spilled: %+v, want sealed, in memory, pinned by the spill", in)
	}
	if errs, err := b.Delete(ctx, small); err != nil || errs[0] != nil {
		t.Fatalf("delete during the stalled spill: %v %v", err, errs)
	}
	select {
	case err := <-created:
		t.Fatalf("the put needing the room returned (%v) while the spill was stalled", err)
	default:
	}

	s3.Resume()
	if err := <-created; err != nil {
		t.Fatalf("put after the spill resumed: %v", err)
	}
	in, ok := infoOf(t, b, idBig)
	if !ok || in.State != store.StateCold {
		t.Fatalf("spilled object: %+v, want cold", in)
	}
	if data, _, err := getBytes(ctx, b, idBig); err != nil || !bytes.Equal(data, big) {
		t.Fatalf("restore of the object spilled through the stall: %v", err)
	}
}
