package storeserver_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// Two stores on one tier, neither with --cold-shared: ColdTier names it;
// a subscriber of cold events hears the writes and the deletes of the
// tier's copies; the other store adopts an object written after it
// started and restores it on Get; a store without a tier names none and
// refuses Adopt.
func TestColdEventsAndAdopt(t *testing.T) {
	for _, medium := range media {
		t.Run(medium.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			m := medium.open(t)
			a, b := coldStore(t, m, 16<<20), coldStore(t, m, 16<<20)
			ca, cb := testutil.StoreClient(t, a.Socket), testutil.StoreClient(t, b.Socket)
			if url, err := ca.ColdTier(ctx); err != nil || url != m.url {
				t.Fatalf("ColdTier: %q, %v; want %q", url, err, m.url)
			}
			sub, err := store.Subscribe(ctx, a.Socket, store.WithColdEvents())
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()

			data := testutil.Pattern(1<<20, 9)
			id := putCold(t, ca, data)
			waitEvent(t, sub, store.EventCold, id)
			if found, err := cb.Adopt(ctx, id, store.ObjectID{1}); err != nil || !found[0] || found[1] {
				t.Fatalf("Adopt: %v, %v; want [true false]", found, err)
			}
			got, _, err := getBytes(ctx, cb, id)
			if err != nil || string(got) != string(data) {
				t.Fatalf("Get of an adopted object: %d bytes, %v", len(got), err)
			}
			cb.Release(ctx, id)
			if errs, err := ca.Delete(ctx, id); err != nil || errs[0] != nil {
				t.Fatalf("delete: %v %v", err, errs)
			}
			waitEvent(t, sub, store.EventColdDeleted, id)

			plain, _ := testutil.StartStore(t, 1<<20)
			cp := testutil.StoreClient(t, plain)
			if url, err := cp.ColdTier(ctx); err != nil || url != "" {
				t.Fatalf("ColdTier without a tier: %q, %v", url, err)
			}
			if _, err := cp.Adopt(ctx, id); !errors.Is(err, store.ErrInvalidRequest) {
				t.Fatalf("Adopt without a tier: %v", err)
			}
		})
	}
}

// waitEvent waits for the event of kind about id, skipping the others.
func waitEvent(t *testing.T, sub *store.Subscription, kind store.EventKind, id store.ObjectID) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription ended waiting for %s of %s: %v", kind, id, sub.Err())
			}
			if ev.Kind == kind && ev.ID == id {
				if ev.Digest.IsZero() {
					t.Errorf("%s event of %s without a digest", kind, id)
				}
				return
			}
		case <-timeout:
			t.Fatalf("no %s event of %s", kind, id)
		}
	}
}
