package stream_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/cluster/clustertest"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// While etcd hangs (SIGSTOP: connections open, nothing answers) or is dead
// (SIGKILL), every cluster request fails within the directory's deadline
// with StatusClusterUnavailable and a sentence saying so, local requests
// keep working, and the store's seals still reach the directory: when
// etcd is back, the nodes re-register and write their locations (and a
// group joined meanwhile) by themselves.
func TestEtcdOutage(t *testing.T) {
	etcd := clustertest.StartExternal(t, 1)
	urls := strings.Join(etcd.Endpoints(), ",")
	a := testutil.StartNode(t, "a", "32MiB", "--etcd", urls, "--lease-ttl", "2s", "--group", "all")
	b := testutil.StartNode(t, "b", "32MiB", "--etcd", urls, "--lease-ttl", "2s", "--group", "all")
	ca := streamClient(t, a.Addr)
	want := "cluster directory unavailable: etcd at " + urls + " did not answer within 3s; local objects are still served"

	for i, outage := range []struct {
		name     string
		down, up func()
	}{
		{"hung", func() { etcd.Pause(0) }, func() { etcd.Resume(0) }},
		{"killed", func() { etcd.Kill(0) }, func() { etcd.Restart(t, 0) }},
	} {
		t.Run(outage.name, func(t *testing.T) {
			data := testutil.Pattern(1<<20, byte(40+i))
			id, err := testutil.StoreClient(t, b.Socket).Put(bg, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			waitHolders(t, ca, id, "[b]")
			group := "late-" + outage.name

			outage.down()
			// A hang of the old kind (the I/O timeout, 30 s) ends with this
			// deadline instead of the status.
			ctx, cancel := context.WithTimeout(bg, 20*time.Second)
			defer cancel()
			missing := store.RandomObjectID()
			ops := map[string]func(*stream.Client) error{
				"nodes":          func(c *stream.Client) error { _, err := c.Nodes(ctx); return err },
				"locate":         func(c *stream.Client) error { _, err := c.Locate(ctx, id); return err },
				"get":            func(c *stream.Client) error { _, err := c.Fetch(ctx, []stream.ObjectID{missing}); return err },
				"delete":         func(c *stream.Client) error { _, err := c.DeleteCluster(ctx, id); return err },
				"group":          func(c *stream.Client) error { _, err := c.JoinGroup(ctx, group); return err },
				"prefetch":       func(c *stream.Client) error { _, err := c.Prefetch(ctx, id, "all", true, 0); return err },
				"prefetch-async": func(c *stream.Client) error { _, err := c.Prefetch(ctx, id, "all", false, 0); return err },
			}
			var mu sync.Mutex
			var wg sync.WaitGroup
			failures := []string{}
			for name, op := range ops {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := stream.Connect(ctx, a.Addr)
					if err == nil {
						err = op(c)
						c.Close()
					}
					if !stream.IsStatus(err, stream.StatusClusterUnavailable) || !strings.Contains(err.Error(), want) {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%s: %v", name, err))
						mu.Unlock()
					}
				}()
			}
			// Local work goes on meanwhile.
			if _, err := ca.Ping(ctx); err != nil {
				t.Errorf("PING with etcd down: %v", err)
			}
			if _, err := ca.Stat(ctx); err != nil {
				t.Errorf("STAT with etcd down: %v", err)
			}
			if _, err := ca.List(ctx); err != nil {
				t.Errorf("LIST with etcd down: %v", err)
			}
			if _, err := ca.Sync(ctx, []stream.PeerRequest{{Kind: stream.Copy, From: b.Addr, Objects: []stream.ObjectID{id}}}); err != nil {
				t.Errorf("SYNC COPY with etcd down: %v", err)
			}
			mustHave(t, a.Socket, id, data, nil)
			later, err := testutil.StoreClient(t, b.Socket).Put(ctx, testutil.Pattern(64<<10, byte(50+i)), nil)
			if err != nil {
				t.Errorf("put with etcd down: %v", err)
			}
			wg.Wait()
			for _, f := range failures {
				t.Errorf("%s, want status %q and %q", f, stream.StatusClusterUnavailable, want)
			}
			mustHave(t, b.Socket, id, data, nil) // the failed cluster delete deleted nothing

			// etcd is back: registrations, locations and the group join
			// are written again without anyone asking.
			outage.up()
			eventually(t, "the directory to be written again", func() error {
				ns, err := ca.Nodes(bg)
				if err != nil || len(ns) != 2 || !strings.Contains(fmt.Sprint(ns[0].Groups), group) {
					return fmt.Errorf("nodes %+v %v, want a (in group %s) and b", ns, err, group)
				}
				locs, err := ca.Locate(bg, id, later)
				if got := fmt.Sprint(nodeNames(locs[id]), nodeNames(locs[later])); err != nil || got != "[a b] [b]" {
					return fmt.Errorf("holders %s %v, want [a b] [b]", got, err)
				}
				return nil
			})
			if _, err := ca.Fetch(bg, []stream.ObjectID{later}); err != nil {
				t.Fatalf("get after etcd came back: %v", err)
			}
		})
	}
}

func nodeNames(locs []stream.Location) []string {
	names := []string{}
	for _, l := range locs {
		names = append(names, l.Node)
	}
	sort.Strings(names)
	return names
}

// eventually waits up to 30 s for check to pass.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
