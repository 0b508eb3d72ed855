package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/cluster/clustertest"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// Cold records: the exact key and value, written under no lease (they
// outlive their writer's registration), a listing of the store's tier
// does not overwrite another node's record, and a removal deletes it.
func TestColdRecords(t *testing.T) {
	t.Parallel()
	e := clustertest.StartEmbedded(t)
	cli := dial(t, e.Endpoints())
	a := open(t, cli, "a")
	b := open(t, cli, "b")
	ctx := ctxT(t)
	x := oid("x")
	written := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	s3 := ColdCopy{Tier: "s3://bucket/prefix", Size: 1 << 33, Digest: wire.Digest{0xab}, Node: "a", Written: written}
	dir := ColdCopy{Tier: "file:///var/lib/plasma/cold", Host: "host1", Size: 7, Digest: wire.Digest{1}, Node: "a", Written: written}
	a.QueueColdCopy(x, s3, false)
	a.QueueColdCopy(x, dir, false)
	key := "/plasma/cold/" + wire.ID(x).String() + "/s3:%2F%2Fbucket%2Fprefix"
	waitFor(t, "a's cold records", 10*time.Second, func() error {
		resp, err := cli.Get(ctx, key)
		if err != nil || len(resp.Kvs) != 1 {
			return fmt.Errorf("key %s: %v %v", key, resp, err)
		}
		want := `{"tier":"s3://bucket/prefix","size":8589934592,"digest":"ab` + fmt.Sprintf("%062d", 0) + `","node":"a","written":"2026-01-02T03:04:05.000000006Z"}`
		if kv := resp.Kvs[0]; string(kv.Value) != want || kv.Lease != 0 {
			return fmt.Errorf("%s = %s (lease %x), want %s without a lease", key, kv.Value, kv.Lease, want)
		}
		got, err := b.ColdCopies(ctx, x)
		if err != nil || len(got) != 2 || got[0].Where() != "file:///var/lib/plasma/cold on host1" || got[1] != s3 {
			return fmt.Errorf("cold copies: %+v %v", got, err)
		}
		return nil
	})

	// b learns of the same copy by listing its store (ifAbsent): a's
	// record stays; a plain write (b's store wrote it) replaces it.
	fromB := s3
	fromB.Node = "b"
	b.QueueColdCopy(x, fromB, true)
	y := oid("y")
	b.QueueColdCopy(y, fromB, true)
	waitFor(t, "b's record of y", 10*time.Second, coldIs(ctx, a, y, "s3://bucket/prefix by b"))
	if err := coldIs(ctx, a, x, "file:///var/lib/plasma/cold on host1 by a", "s3://bucket/prefix by a")(); err != nil {
		t.Fatal(err)
	}

	// a dies: its records stay.
	a.abandon()
	time.Sleep(2*testTTL + time.Second)
	if err := coldIs(ctx, b, x, "file:///var/lib/plasma/cold on host1 by a", "s3://bucket/prefix by a")(); err != nil {
		t.Fatal(err)
	}
	b.QueueColdRemoval(x, "s3://bucket/prefix", "")
	waitFor(t, "the removal", 10*time.Second, coldIs(ctx, b, x, "file:///var/lib/plasma/cold on host1 by a"))
	resp, err := cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("key %s after its removal: %v %v", key, resp.Kvs, err)
	}
}

func coldIs(ctx context.Context, d *Directory, id wire.ID, want ...string) func() error {
	return func() error {
		got, err := d.ColdCopies(ctx, id)
		if err != nil {
			return err
		}
		if names := names(got, func(c ColdCopy) string { return c.Where() + " by " + c.Node }); !eq(names, want...) {
			return fmt.Errorf("cold copies of %s: %v, want %v", id, names, want)
		}
		return nil
	}
}
