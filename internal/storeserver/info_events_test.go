package storeserver_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// A subscriber that asks for info and a snapshot first gets every sealed
// object (EventPresent, with its info), then EventSnapshotEnd, then
// events that carry the object's info; a subscriber that asks for neither
// (every client before them) gets the events it always got, without info.
func TestSubscriberInfoAndSnapshot(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	c := testutil.StoreClient(t, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before, err := c.Put(ctx, []byte("before"), []byte("meta-before"))
	if err != nil {
		t.Fatal(err)
	}
	full, err := store.Subscribe(ctx, sock, store.WithInfo(), store.WithSnapshot(), store.WithDigestEvents())
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	plain, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()

	ev := nextEvent(t, full)
	if ev.Kind != store.EventPresent || ev.ID != before || ev.Info == nil || string(ev.Info.Metadata) != "meta-before" ||
		ev.Info.CreatorPID != uint32(os.Getpid()) || ev.Info.Created.IsZero() || ev.Info.Construct < 0 {
		t.Fatalf("first event %+v (info %+v): want the object sealed before, present, with its info", ev, ev.Info)
	}
	if ev := nextEvent(t, full); ev.Kind != store.EventSnapshotEnd {
		t.Fatalf("second event %+v: want the snapshot's end", ev)
	}
	after, err := c.Put(ctx, []byte("after"), []byte("m2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, after); err != nil {
		t.Fatal(err)
	}
	for _, want := range []store.EventKind{store.EventSealed, store.EventDeleted} {
		ev := nextEvent(t, full)
		for ev.Kind == store.EventDigest {
			ev = nextEvent(t, full)
		}
		if ev.Kind != want || ev.ID != after || ev.Info == nil || string(ev.Info.Metadata) != "m2" {
			t.Fatalf("event %+v (info %+v): want %s of %s with its info", ev, ev.Info, want, after)
		}
		pe := nextEvent(t, plain)
		if pe.Kind != want || pe.ID != after || pe.Info != nil {
			t.Fatalf("plain subscriber's event %+v: want %s of %s in the old layout, without info", pe, want, after)
		}
	}
}
