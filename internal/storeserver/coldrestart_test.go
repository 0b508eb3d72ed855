package storeserver_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/coldtier"
	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// A persisted object survives the store's SIGKILL: a store started on the
// same tier lists it as cold and a Get restores it. An object whose
// persist the kill cut short is either absent or whole, never half.
func TestColdPersistSurvivesKill(t *testing.T) {
	for _, md := range media {
		t.Run(md.name, func(t *testing.T) {
			m := md.open(t)
			args := []string{"-e", m.url, "--s3-part-size", "5MiB", "--cold-timeout", "30s"}
			sock, cmd := testutil.StartStoreProcess(t, "96MiB", args...)
			c := testutil.StoreClient(t, sock)
			ctx := context.Background()
			small := testutil.Pattern(300<<10, 9)
			idSmall, err := c.Put(ctx, small, []byte("m"))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Persist(ctx, idSmall); err != nil {
				t.Fatal(err)
			}
			big := testutil.Pattern(48<<20, 10)
			idBig, err := c.Put(ctx, big, nil)
			if err != nil {
				t.Fatal(err)
			}
			go c.Persist(ctx, idBig) // cut by the kill, or not
			time.Sleep(30 * time.Millisecond)
			cmd.Process.Kill()

			sock2, _ := testutil.StartStoreProcess(t, "96MiB", args...)
			c2 := testutil.StoreClient(t, sock2)
			if in, ok := infoOf(t, c2, idSmall); !ok || in.State != store.StateCold {
				t.Fatalf("persisted object after the kill: %+v (listed %v), want cold", in, ok)
			}
			data, meta, err := getBytes(ctx, c2, idSmall)
			if err != nil || !bytes.Equal(data, small) || string(meta) != "m" {
				t.Fatalf("restore after the kill: %v", err)
			}
			if _, ok := infoOf(t, c2, idBig); ok {
				data, _, err := getBytes(ctx, c2, idBig)
				if err != nil || !bytes.Equal(data, big) {
					t.Fatalf("object whose persist the kill cut is listed but does not restore whole: %v", err)
				}
			}
		})
	}
}

// Two stores on one bucket: what one persisted, the other (started
// later, or restarted) lists and restores; --restore-on-start brings it
// into memory at once.
func TestColdTwoStoresShareBucket(t *testing.T) {
	m := s3Medium(t)
	args := []string{"-e", m.url, "--s3-part-size", "5MiB"}
	sockA, _ := testutil.StartStoreProcess(t, "32MiB", args...)
	a := testutil.StoreClient(t, sockA)
	ctx := context.Background()
	data := testutil.Pattern(7<<20, 11)
	id, err := a.Put(ctx, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Persist(ctx, id); err != nil {
		t.Fatal(err)
	}
	sockB, _ := testutil.StartStoreProcess(t, "32MiB", append(args, "--restore-on-start")...)
	b := testutil.StoreClient(t, sockB)
	waitFor(t, "restore at start", func() bool {
		in, ok := infoOf(t, b, id)
		return ok && in.State == store.StateSealed && in.Cold
	})
	got, _, err := getBytes(ctx, b, id)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("second store's copy: %v", err)
	}
}

// With --cold-shared a store finds in the tier what another store
// persisted after it started: a Get restores it. A Get of an id that is
// nowhere is still answered "not found" at once.
func TestColdSharedLookup(t *testing.T) {
	m := s3Medium(t)
	cfg := storeserver.Config{Capacity: 32 << 20, Cold: coldtier.Config{URL: m.url, PartSize: 5 << 20}, ColdTimeout: 30 * time.Second}
	b := testutil.StoreClient(t, testutil.StartStoreConfig(t, storeserver.Config{Capacity: cfg.Capacity, Cold: cfg.Cold,
		ColdTimeout: cfg.ColdTimeout, ColdShared: true}).Socket)
	a := testutil.StoreClient(t, testutil.StartStoreConfig(t, cfg).Socket)
	ctx := context.Background()
	data := testutil.Pattern(6<<20, 15)
	id, err := a.Put(ctx, data, []byte("shared"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetOne(ctx, id, 0); !errors.Is(err, store.ErrObjectNotFound) {
		t.Fatalf("get before the other store persisted it: %v, want not found", err)
	}
	if err := a.Persist(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other store's persist to be found", func() bool {
		got, meta, err := getBytes(ctx, b, id)
		if err != nil && !errors.Is(err, store.ErrObjectNotFound) {
			t.Fatal(err)
		}
		return err == nil && bytes.Equal(got, data) && string(meta) == "shared"
	})
	if _, err := b.GetOne(ctx, store.RandomObjectID(), 0); !errors.Is(err, store.ErrObjectNotFound) {
		t.Fatalf("get of an id that is nowhere: %v", err)
	}
}
