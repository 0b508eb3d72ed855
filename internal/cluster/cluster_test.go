package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/plasmastream/plasmastream/internal/cluster/clustertest"
	"github.com/plasmastream/plasmastream/internal/wire"
)

const testTTL = 2 * time.Second

// waitFor polls cond until it holds or a generous bound passes.
func waitFor(t *testing.T, what string, bound time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(bound)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, bound, err)
}

func dial(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := Dial(endpoints, nil, clustertest.LogBuffer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func open(t *testing.T, cli *clientv3.Client, name string, groups ...string) *Directory {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := Open(ctx, Config{
		Client:   cli,
		Self:     Node{Name: name, Address: name + ".test:2021", Groups: groups, Version: "test"},
		LeaseTTL: testTTL,
		Logger:   clustertest.LogBuffer(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func oid(s string) (id [20]byte) {
	copy(id[:], s)
	return id
}

func names[T any](xs []T, name func(T) string) []string {
	out := []string{}
	for _, x := range xs {
		out = append(out, name(x))
	}
	return out
}

func nodeNames(ns []Node) []string         { return names(ns, func(n Node) string { return n.Name }) }
func holderNames(ls []Location) []string   { return names(ls, func(l Location) string { return l.Node }) }
func eq(got []string, want ...string) bool { return slices.Equal(got, want) }

func holdersAre(ctx context.Context, d *Directory, id [20]byte, want ...string) func() error {
	return func() error {
		ls, err := d.Holders(ctx, id)
		if err != nil {
			return err
		}
		if got := holderNames(ls); !eq(got, want...) {
			return fmt.Errorf("holders %v, want %v", got, want)
		}
		return nil
	}
}

func nodesAre(ctx context.Context, d *Directory, want ...string) func() error {
	return func() error {
		ns, err := d.Nodes(ctx)
		if err != nil {
			return err
		}
		if got := nodeNames(ns); !eq(got, want...) {
			return fmt.Errorf("nodes %v, want %v", got, want)
		}
		return nil
	}
}

func TestTwoNodes(t *testing.T) {
	t.Parallel()
	e := clustertest.StartEmbedded(t)
	cli := dial(t, e.Endpoints())
	a := open(t, cli, "a", "g1", "g2")
	b := open(t, cli, "b", "g1")
	ctx := ctxT(t)

	for _, d := range []*Directory{a, b} {
		ns, err := d.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !eq(nodeNames(ns), "a", "b") || ns[0].Address != "a.test:2021" || !eq(ns[0].Groups, "g1", "g2") || ns[0].Version != "test" || ns[0].Started.IsZero() {
			t.Fatalf("nodes: %+v", ns)
		}
		g1, err := d.GroupMembers(ctx, "g1")
		if err != nil || !eq(nodeNames(g1), "a", "b") {
			t.Fatalf("g1: %v %v", nodeNames(g1), err)
		}
		g2, err := d.GroupMembers(ctx, "g2")
		if err != nil || !eq(nodeNames(g2), "a") {
			t.Fatalf("g2: %v %v", nodeNames(g2), err)
		}
		g3, err := d.GroupMembers(ctx, "g3")
		if err != nil || len(g3) != 0 {
			t.Fatalf("g3: %v %v", g3, err)
		}
	}
	if s := a.Self(); s.Name != "a" || !eq(s.Groups, "g1", "g2") {
		t.Fatalf("self: %+v", s)
	}

	x, y := oid("object-x"), oid("object-y")
	var dig wire.Digest
	dig[0], dig[31] = 0xab, 0xcd
	if err := a.AddLocation(ctx, x, 1<<33, dig); err != nil {
		t.Fatal(err)
	}
	if err := b.AddLocation(ctx, x, 1<<33, wire.Digest{}); err != nil {
		t.Fatal(err)
	}
	if err := b.AddLocation(ctx, y, 7, wire.Digest{}); err != nil {
		t.Fatal(err)
	}
	ls, err := b.Holders(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	want := []Location{
		{Node: "a", Address: "a.test:2021", Size: 1 << 33, Digest: dig},
		{Node: "b", Address: "b.test:2021", Size: 1 << 33},
	}
	if !slices.Equal(ls, want) {
		t.Fatalf("holders of x: %+v, want %+v", ls, want)
	}

	// The key layout of docs/cluster.md, byte for byte.
	resp, err := cli.Get(ctx, "/plasma/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string]string{}
	leases := map[string]int64{}
	for _, k := range resp.Kvs {
		kv[string(k.Key)] = string(k.Value)
		leases[string(k.Key)] = k.Lease
	}
	xk := "/plasma/objects/" + fmt.Sprintf("%x", x) + "/"
	if got := kv[xk+"a"]; got != `{"size":8589934592,"digest":"ab`+strings.Repeat("0", 60)+`cd"}` {
		t.Errorf("location a: %s", got)
	}
	if got := kv[xk+"b"]; got != `{"size":8589934592,"digest":""}` {
		t.Errorf("location b: %s", got)
	}
	if got := kv["/plasma/groups/g2/a"]; got != "{}" {
		t.Errorf("group key: %q", got)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(kv["/plasma/nodes/a"]), &rec); err != nil {
		t.Fatalf("node record %q: %v", kv["/plasma/nodes/a"], err)
	}
	for _, f := range []string{"name", "address", "groups", "version", "started"} {
		if _, ok := rec[f]; !ok {
			t.Errorf("node record lacks %q: %s", f, kv["/plasma/nodes/a"])
		}
	}
	if len(kv) != 2+3+3 { // nodes a b; groups g1/a g1/b g2/a; x/a x/b y/b
		t.Errorf("keys: %v", kv)
	}
	for k, l := range leases {
		if l == 0 {
			t.Errorf("key %s has no lease", k)
		}
	}

	if err := a.RemoveLocation(ctx, x); err != nil {
		t.Fatal(err)
	}
	if err := holdersAre(ctx, b, x, "b")(); err != nil {
		t.Fatal(err)
	}
	if err := holdersAre(ctx, a, y, "b")(); err != nil {
		t.Fatal(err)
	}
	if err := holdersAre(ctx, a, oid("nothing"))(); err != nil {
		t.Fatal(err)
	}

	// Groups can change at run time.
	if err := b.JoinGroup(ctx, "g2"); err != nil {
		t.Fatal(err)
	}
	if err := a.LeaveGroup(ctx, "g2"); err != nil {
		t.Fatal(err)
	}
	g2, err := a.GroupMembers(ctx, "g2")
	if err != nil || !eq(nodeNames(g2), "b") {
		t.Fatalf("g2 after join/leave: %v %v", nodeNames(g2), err)
	}
	ns, _ := a.Nodes(ctx)
	if !eq(ns[0].Groups, "g1") || !eq(ns[1].Groups, "g1", "g2") {
		t.Fatalf("groups in records: %+v", ns)
	}
	if err := a.JoinGroup(ctx, "bad/name"); err == nil {
		t.Fatal("group name with / accepted")
	}
}

// A location whose node record is gone is never returned, even if the
// location key itself is still there.
func TestHoldersNeedRegistration(t *testing.T) {
	t.Parallel()
	e := clustertest.StartEmbedded(t)
	cli := dial(t, e.Endpoints())
	a := open(t, cli, "a")
	ctx := ctxT(t)
	x := oid("x")
	if _, err := cli.Put(ctx, "/plasma/objects/"+fmt.Sprintf("%x", x)+"/ghost", `{"size":1,"digest":""}`); err != nil {
		t.Fatal(err)
	}
	if err := a.AddLocation(ctx, x, 1, wire.Digest{}); err != nil {
		t.Fatal(err)
	}
	if err := holdersAre(ctx, a, x, "a")(); err != nil {
		t.Fatal(err)
	}
}

// A node whose process dies (keep-alive stops, nothing revoked) vanishes
// with its locations within the TTL.
func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	e := clustertest.StartEmbedded(t)
	cli := dial(t, e.Endpoints())
	a := open(t, cli, "a", "g")
	b := open(t, cli, "b", "g")
	ctx := ctxT(t)
	x := oid("x")
	for _, d := range []*Directory{a, b} {
		if err := d.AddLocation(ctx, x, 10, wire.Digest{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := holdersAre(ctx, a, x, "a", "b")(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b.abandon()
	waitFor(t, "b's registration to expire", 5*testTTL+5*time.Second, func() error {
		if err := nodesAre(ctx, a, "a")(); err != nil {
			return err
		}
		if err := holdersAre(ctx, a, x, "a")(); err != nil {
			return err
		}
		g, err := a.GroupMembers(ctx, "g")
		if err != nil || !eq(nodeNames(g), "a") {
			return fmt.Errorf("group g: %v %v", nodeNames(g), err)
		}
		// No key of b is left at all.
		resp, err := cli.Get(ctx, "/plasma/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			if strings.HasSuffix(string(kv.Key), "/b") {
				return fmt.Errorf("key %s left", kv.Key)
			}
		}
		return nil
	})
	t.Logf("b vanished %v after its keep-alive stopped (TTL %v)", time.Since(start).Round(10*time.Millisecond), testTTL)
}

// The same test with a real process death: the client itself goes away.
func TestLeaseExpiryClientClosed(t *testing.T) {
	t.Parallel()
	e := clustertest.StartEmbedded(t)
	cli := dial(t, e.Endpoints())
	a := open(t, cli, "a")
	bcli, err := Dial(e.Endpoints(), nil, clustertest.LogBuffer(t))
	if err != nil {
		t.Fatal(err)
	}
	b := open(t, bcli, "b")
	ctx := ctxT(t)
	x := oid("x")
	if err := b.AddLocation(ctx, x, 10, wire.Digest{}); err != nil {
		t.Fatal(err)
	}
	bcli.Close()
	waitFor(t, "b to vanish", 5*testTTL+5*time.Second, func() error {
		if err := nodesAre(ctx, a, "a")(); err != nil {
			return err
		}
		return holdersAre(ctx, a, x)()
	})
	// Close of a directory whose client is gone does not hang.
	done := make(chan struct{})
	go func() { b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Close hangs with a closed client")
	}
}

func TestCloseRevokes(t *testing.T) {
	t.Parallel()
	e := clustertest.StartEmbedded(t)
	cli := dial(t, e.Endpoints())
	a := open(t, cli, "a")
	b := open(t, cli, "b", "g")
	ctx := ctxT(t)
	x := oid("x")
	if err := b.AddLocation(ctx, x, 10, wire.Digest{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// At once: no polling.
	if err := nodesAre(ctx, a, "a")(); err != nil {
		t.Fatal(err)
	}
	if err := holdersAre(ctx, a, x)(); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "/plasma/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if !strings.HasSuffix(string(kv.Key), "/a") {
			t.Errorf("key %s left after Close", kv.Key)
		}
	}
	if err := b.AddLocation(ctx, x, 1, wire.Digest{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddLocation after Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A restarted process with the same node name takes the name over at once:
// its previous incarnation's locations vanish without waiting for the TTL.
func TestRestartedNodeTakesOver(t *testing.T) {
	t.Parallel()
	e := clustertest.StartEmbedded(t)
	cli := dial(t, e.Endpoints())
	ctx := ctxT(t)
	old := open(t, cli, "a")
	x := oid("x")
	if err := old.AddLocation(ctx, x, 10, wire.Digest{}); err != nil {
		t.Fatal(err)
	}
	old.abandon() // crashed; its lease lives on for up to the TTL
	a := open(t, cli, "a")
	if err := holdersAre(ctx, a, x)(); err != nil {
		t.Fatal(err)
	}
	if err := nodesAre(ctx, a, "a")(); err != nil {
		t.Fatal(err)
	}

	// A second live process with the same name takes over too; the first
	// one then does not fight back (it logs ErrNameTaken and waits).
	dup := open(t, cli, "a")
	time.Sleep(testTTL + time.Second)
	resp, err := cli.Get(ctx, "/plasma/nodes/a")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("node record: %v %v", resp, err)
	}
	if clientv3.LeaseID(resp.Kvs[0].Lease) != dup.currentLease() {
		t.Fatalf("the name flapped back to the older process")
	}
}

// Changes made while etcd is down fail fast with ErrUnavailable, are kept,
// and are written when etcd is back; the lease and registration come back
// by themselves, whether etcd kept its data or lost it.
func TestEtcdRestart(t *testing.T) {
	t.Parallel()
	for _, wipe := range []bool{false, true} {
		t.Run(fmt.Sprintf("wipe=%v", wipe), func(t *testing.T) {
			t.Parallel()
			e := clustertest.StartEmbedded(t)
			cli := dial(t, e.Endpoints())
			a := open(t, cli, "a", "g")
			ctx := ctxT(t)
			x, y, z := oid("x"), oid("y"), oid("z")
			for _, id := range [][20]byte{x, y} {
				if err := a.AddLocation(ctx, id, 10, wire.Digest{}); err != nil {
					t.Fatal(err)
				}
			}

			e.Stop()
			// Keep the directory working against a dead etcd for longer
			// than the TTL so that the lease is lost on the client side.
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			err := a.AddLocation(sctx, z, 10, wire.Digest{})
			cancel()
			if err == nil {
				t.Fatal("AddLocation with etcd down succeeded")
			}
			waitFor(t, "directory to notice the outage", 10*time.Second, func() error {
				if err := a.RemoveLocation(ctx, y); !errors.Is(err, ErrUnavailable) {
					return fmt.Errorf("RemoveLocation: %v", err)
				}
				return nil
			})
			if wipe {
				e.Dir += "-new"
			}
			e.Start(t)

			waitFor(t, "re-registration", 30*time.Second, func() error {
				if err := nodesAre(ctx, a, "a")(); err != nil {
					return err
				}
				g, err := a.GroupMembers(ctx, "g")
				if err != nil || !eq(nodeNames(g), "a") {
					return fmt.Errorf("group g: %v %v", nodeNames(g), err)
				}
				for _, c := range []struct {
					id   [20]byte
					want []string
				}{{x, []string{"a"}}, {y, nil}, {z, []string{"a"}}} {
					if err := holdersAre(ctx, a, c.id, c.want...)(); err != nil {
						return fmt.Errorf("%q: %v", c.id[:1], err)
					}
				}
				return nil
			})
			// Writes work again.
			if err := a.AddLocation(ctx, y, 10, wire.Digest{}); err != nil {
				t.Fatal(err)
			}
			if err := holdersAre(ctx, a, y, "a")(); err != nil {
				t.Fatal(err)
			}
			// Only the current lease carries keys.
			resp, err := cli.Get(ctx, "/plasma/", clientv3.WithPrefix())
			if err != nil {
				t.Fatal(err)
			}
			for _, kv := range resp.Kvs {
				if l := a.currentLease(); clientv3.LeaseID(kv.Lease) != l {
					t.Errorf("key %s under lease %x, current %x", kv.Key, kv.Lease, l)
				}
			}
		})
	}
}

// The directory against a real 3-member etcd cluster, one member killed.
func TestExternalCluster(t *testing.T) {
	t.Parallel()
	c := clustertest.StartExternal(t, 3)
	ctx := ctxT(t)
	cliA := dial(t, c.Endpoints())
	cliB := dial(t, c.Endpoints()[1:]) // b talks to m1 and m2 only
	a := open(t, cliA, "a", "g")
	b := open(t, cliB, "b", "g")
	x := oid("x")
	for _, d := range []*Directory{a, b} {
		if err := d.AddLocation(ctx, x, 10, wire.Digest{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := holdersAre(ctx, a, x, "a", "b")(); err != nil {
		t.Fatal(err)
	}

	c.Kill(1)
	// The cluster keeps quorum: both directories stay registered and keep
	// working (a write may fail once while the client moves to another
	// member; the directory then rewrites everything by itself).
	y := oid("y")
	waitFor(t, "writes after a member died", 20*time.Second, func() error {
		for _, d := range []*Directory{a, b} {
			if err := d.AddLocation(ctx, y, 10, wire.Digest{}); err != nil {
				return err
			}
		}
		return holdersAre(ctx, a, y, "a", "b")()
	})
	// Longer than the TTL: the leases survive the dead member.
	time.Sleep(2 * testTTL)
	waitFor(t, "registrations after a member died", 20*time.Second, func() error {
		if err := nodesAre(ctx, b, "a", "b")(); err != nil {
			return err
		}
		return holdersAre(ctx, b, x, "a", "b")()
	})

	// A node death is still seen through the surviving members.
	a.abandon()
	waitFor(t, "a to vanish", 5*testTTL+5*time.Second, func() error {
		if err := nodesAre(ctx, b, "b")(); err != nil {
			return err
		}
		return holdersAre(ctx, b, x, "b")()
	})
}
