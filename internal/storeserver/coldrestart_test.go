package storeserver_test

import (
	"bytes"
	"context"
	"testing"
	"time"

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
