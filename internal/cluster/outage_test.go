package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/plasmastream/plasmastream/internal/cluster/clustertest"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// With etcd hung (SIGSTOP: connections open, nothing answers), every
// operation a caller waits for fails within the operation timeout with an
// *UnavailableError naming etcd, long before the caller's own deadline;
// queued location changes never wait, beyond maxDirty too; and when etcd
// answers again the directory writes all of it (and a group joined
// meanwhile) by itself.
func TestHungEtcd(t *testing.T) {
	t.Parallel()
	c := clustertest.StartExternal(t, 1)
	cli := dial(t, c.Endpoints())
	a := open(t, cli, "a", "g")
	ctx := ctxT(t)
	x, y := oid("x"), oid("y")
	if err := a.AddLocation(ctx, x, 10, wire.Digest{}); err != nil {
		t.Fatal(err)
	}

	c.Pause(0)
	octx, cancel := context.WithTimeout(ctx, 20*time.Second) // the old wait
	defer cancel()
	want := "cluster directory unavailable: etcd at " + c.Endpoints()[0] + " did not answer within 3s"
	ops := map[string]func() error{
		"Nodes":        func() error { _, err := a.Nodes(octx); return err },
		"Holders":      func() error { _, err := a.Holders(octx, x); return err },
		"GroupMembers": func() error { _, err := a.GroupMembers(octx, "g"); return err },
		"AddLocation":  func() error { return a.AddLocation(octx, y, 10, wire.Digest{}) },
		"JoinGroup":    func() error { return a.JoinGroup(octx, "h") },
	}
	var wg sync.WaitGroup
	for name, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := op()
			var ue *UnavailableError
			if !errors.As(err, &ue) || !errors.Is(err, ErrUnavailable) || err.Error() != want {
				t.Errorf("%s with etcd hung: %v, want %q", name, err, want)
			}
		}()
	}
	// The store mirror's changes: more than maxDirty of them, while the
	// flush in flight waits for etcd.
	n := maxDirty + 100
	for i := range n {
		if err := a.QueueLocation(oid(fmt.Sprint(i)), uint64(i), wire.Digest{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.QueueRemoval(x); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	c.Resume(0)
	waitFor(t, "everything written", time.Minute, func() error {
		resp, err := cli.Get(ctx, "/plasma/objects/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		if resp.Count != int64(n+1) { // and y
			return fmt.Errorf("%d locations in etcd, want %d", resp.Count, n+1)
		}
		if err := holdersAre(ctx, a, x)(); err != nil {
			return err
		}
		if err := holdersAre(ctx, a, oid(fmt.Sprint(n-1)), "a")(); err != nil {
			return err
		}
		g, err := a.GroupMembers(ctx, "h")
		if err != nil || !eq(nodeNames(g), "a") {
			return fmt.Errorf("group h: %v %v", nodeNames(g), err)
		}
		return nil
	})
}
