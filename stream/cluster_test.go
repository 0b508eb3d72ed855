package stream_test

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/plasmastream/plasmastream/internal/cluster/clustertest"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// startCluster starts node a with an embedded etcd member and the other
// nodes joined to it, all with a 2 s lease, and returns the nodes and
// their metrics ports.
func startCluster(t *testing.T, names ...string) ([]*testutil.Node, []int) {
	t.Helper()
	etcd := testutil.FreeAddr(t)
	var nodes []*testutil.Node
	var metrics []int
	for i, name := range names {
		port := testutil.FreePort(t, "127.0.0.1")
		metrics = append(metrics, port)
		args := []string{"--lease-ttl", "2s", "--group", "all", "--group", "g-" + name, "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", port)}
		if i == 0 {
			args = append(args, "--etcd", "embedded", "--etcd-dir", filepath.Join(t.TempDir(), "etcd"), "--etcd-listen", etcd)
		} else {
			args = append(args, "--etcd", "http://"+etcd)
		}
		nodes = append(nodes, testutil.StartNode(t, name, "64MiB", args...))
	}
	return nodes, metrics
}

func holders(t *testing.T, c *stream.Client, id stream.ObjectID) []string {
	t.Helper()
	locs, err := c.Locate(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range locs[id] {
		names = append(names, l.Node)
	}
	sort.Strings(names)
	return names
}

func waitHolders(t *testing.T, c *stream.Client, id stream.ObjectID, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := fmt.Sprint(holders(t, c, id))
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("holders of %s: %s, want %s", id, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Any node gets any object; the directory follows seals and deletions; a
// SIGKILLed node's locations vanish within the lease TTL and Gets go to
// the other holders.
func TestClusterGet(t *testing.T) {
	nodes, _ := startCluster(t, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	ca := streamClient(t, a.Addr)

	ns, err := ca.Nodes(bg)
	if err != nil || len(ns) != 3 {
		t.Fatalf("nodes: %+v %v", ns, err)
	}
	for _, n := range ns {
		if n.Address == "" || len(n.Groups) != 2 || n.Groups[0] != "all" {
			t.Fatalf("node %+v lacks its address or groups", n)
		}
	}

	data := testutil.Pattern(3<<20, 11)
	id, err := testutil.StoreClient(t, c.Socket).Put(bg, data, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	waitHolders(t, ca, id, "[c]")

	// A Get on b: a local miss, fetched from c, then registered at b too.
	res, err := streamClient(t, b.Addr).Fetch(bg, []stream.ObjectID{id})
	if err != nil || res.Objects[0].Status != stream.StatusOK {
		t.Fatalf("fetch on b: %v %+v", err, res)
	}
	mustHave(t, b.Socket, id, data, []byte("m"))
	waitHolders(t, ca, id, "[b c]")

	// c dies. Before its lease expires its location is stale: a fetch
	// tries it, fails, and gets the object from b.
	c.Stream.Process.Signal(syscall.SIGKILL)
	if _, err := streamClient(t, nodes[0].Addr).Fetch(bg, []stream.ObjectID{id}); err != nil {
		t.Fatalf("fetch with a stale location: %v", err)
	}
	// Its registration and locations vanish within the TTL.
	waitHolders(t, ca, id, "[a b]")
	if ns, _ := ca.Nodes(bg); len(ns) != 2 {
		t.Fatalf("dead node still registered: %+v", ns)
	}
	mustHave(t, a.Socket, id, data, []byte("m"))

	// A delete removes the location.
	if _, err := testutil.StoreClient(t, b.Socket).Delete(bg, id); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, ca, id, "[a]")

	// Group registration at run time.
	cb := streamClient(t, b.Addr)
	if groups, err := cb.JoinGroup(bg, "late"); err != nil || fmt.Sprint(groups) != "[all g-b late]" {
		t.Fatalf("join: %v %v", groups, err)
	}
	if groups, err := cb.LeaveGroup(bg, "g-b"); err != nil || fmt.Sprint(groups) != "[all late]" {
		t.Fatalf("leave: %v %v", groups, err)
	}

	// An object nobody holds is reported as such, naming it.
	missing := store.RandomObjectID()
	if _, err := ca.Fetch(bg, []stream.ObjectID{missing}); !stream.IsStatus(err, stream.StatusNotFound) {
		t.Fatalf("fetch of a missing object: %v", err)
	}
}

// An object sealed without a digest (the store hashes it a second later)
// gets its digest in the directory too, the one b3sum would print.
func TestDirectoryLearnsLaterDigests(t *testing.T) {
	nodes, _ := startCluster(t, "a")
	a := nodes[0]
	data := testutil.Pattern(1<<20, 21)
	id := store.RandomObjectID()
	putID(t, a.Socket, id, data, nil) // PutID: no digest at Seal
	want := store.Digest(blake3.Sum256(data))
	ca := streamClient(t, a.Addr)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		locs, err := ca.Locate(bg, id)
		if err != nil {
			t.Fatal(err)
		}
		if l := locs[id]; len(l) == 1 && l[0].Digest == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("locations %+v: want the digest %s", locs[id], want)
		}
	}
}

// Concurrent Gets of one object on one node share one transfer.
func TestClusterConcurrentGetsShareOneTransfer(t *testing.T) {
	nodes, metrics := startCluster(t, "a", "b")
	a, b := nodes[0], nodes[1]
	data := testutil.Pattern(8<<20, 12)
	id, _ := testutil.StoreClient(t, b.Socket).Put(bg, data, nil)
	waitHolders(t, streamClient(t, a.Addr), id, "[b]")
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			c, err := stream.Connect(bg, a.Addr)
			if err == nil {
				_, err = c.Fetch(bg, []stream.ObjectID{id})
				c.Close()
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mustHave(t, a.Socket, id, data, nil)
	if sent := scrape(t, metrics[1], "plasma_stream_bytes_sent_total"); sent != float64(len(data)) {
		t.Fatalf("b sent %v bytes of a %d-byte object for 8 concurrent Gets", sent, len(data))
	}
}

// A standalone server answers cluster requests with a clear refusal.
func TestNotClustered(t *testing.T) {
	a := testutil.StartNode(t, "a", "8MiB")
	if _, err := streamClient(t, a.Addr).Nodes(bg); !stream.IsStatus(err, stream.StatusNotClustered) {
		t.Fatalf("nodes on a standalone server: %v", err)
	}
}

// Put with a prefetch group spreads the object to every live member and
// reports each; a dead member is reported failed with a reason.
func TestPrefetchToGroup(t *testing.T) {
	nodes, metrics := startCluster(t, "a", "b", "c", "d", "e")
	a := nodes[0]
	data := testutil.Pattern(6<<20, 13)
	id, _ := testutil.StoreClient(t, a.Socket).Put(bg, data, []byte("p"))
	ca := streamClient(t, a.Addr)
	waitHolders(t, ca, id, "[a]")

	out, err := ca.Prefetch(bg, id, "all", true, 1)
	if err != nil {
		t.Fatalf("prefetch: %v (%+v)", err, out)
	}
	got := map[string]stream.NodeOutcome{}
	for _, o := range out {
		got[o.Node] = o
	}
	if len(out) != 5 || !got["a"].OK || got["a"].Status != stream.StatusAlreadyPresent.String() {
		t.Fatalf("outcome: %+v", out)
	}
	for _, n := range nodes[1:] {
		if o := got[n.Name]; !o.OK || o.Source == "" {
			t.Fatalf("node %s: %+v", n.Name, o)
		}
		mustHave(t, n.Socket, id, data, []byte("p"))
	}
	// The origin sent each slice once; every member served its slice to
	// the three others while it was still receiving the object.
	if sent := scrape(t, metrics[0], "plasma_stream_bytes_sent_total"); sent != float64(len(data)) {
		t.Fatalf("the origin sent %v bytes of a %d-byte object to 4 members", sent, len(data))
	}
	for i, n := range nodes[1:] {
		if sent := scrape(t, metrics[i+1], "plasma_stream_bytes_sent_total"); sent < float64(len(data))/2 {
			t.Fatalf("member %s forwarded only %v bytes to the others", n.Name, sent)
		}
	}
	waitHolders(t, ca, id, "[a b c d e]")

	// A member that died before its lease expired is reported, not hidden.
	id2, _ := testutil.StoreClient(t, a.Socket).Put(bg, testutil.Pattern(1<<20, 14), nil)
	nodes[4].Stream.Process.Signal(syscall.SIGKILL)
	out, err = ca.Prefetch(bg, id2, "all", true, 0)
	var failed []stream.NodeOutcome
	for _, o := range out {
		if !o.OK {
			failed = append(failed, o)
		}
	}
	if len(failed) == 1 && failed[0].Node == "e" && failed[0].Message != "" && err != nil {
		return // the lease had not expired yet: e was tried and reported
	}
	if len(failed) == 0 && err == nil && len(out) == 4 {
		return // the lease had expired: e is no longer a member
	}
	t.Fatalf("prefetch with a dead member: %v %+v", err, out)
}

func TestClusterDelete(t *testing.T) {
	nodes, _ := startCluster(t, "a", "b", "c")
	a := nodes[0]
	id, _ := testutil.StoreClient(t, a.Socket).Put(bg, testutil.Pattern(1<<20, 15), nil)
	ca := streamClient(t, a.Addr)
	if _, err := ca.Prefetch(bg, id, "all", true, 0); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, ca, id, "[a b c]")
	out, err := ca.DeleteCluster(bg, id)
	if err != nil || len(out) != 3 {
		t.Fatalf("cluster delete: %v %+v", err, out)
	}
	for _, n := range nodes {
		mustNotHave(t, n.Socket, id)
	}
	waitHolders(t, ca, id, "[]")
}

// Stream servers work with an external 3-member etcd cluster (Debian's
// etcd-server), and keep working when one member is killed.
func TestExternalEtcdCluster(t *testing.T) {
	etcd := clustertest.StartExternal(t, 3)
	urls := strings.Join(etcd.Endpoints(), ",")
	var nodes []*testutil.Node
	for _, name := range []string{"a", "b"} {
		nodes = append(nodes, testutil.StartNode(t, name, "32MiB", "--etcd", urls, "--lease-ttl", "3s", "--group", "all"))
	}
	a, b := nodes[0], nodes[1]
	ca := streamClient(t, a.Addr)
	data := testutil.Pattern(2<<20, 21)
	id, _ := testutil.StoreClient(t, b.Socket).Put(bg, data, nil)
	waitHolders(t, ca, id, "[b]")

	etcd.Kill(0) // quorum remains with two of three
	if _, err := ca.Fetch(bg, []stream.ObjectID{id}); err != nil {
		t.Fatalf("fetch with one etcd member down: %v", err)
	}
	mustHave(t, a.Socket, id, data, nil)
	waitHolders(t, ca, id, "[a b]")
	if ns, err := ca.Nodes(bg); err != nil || len(ns) != 2 {
		t.Fatalf("nodes with one etcd member down: %+v %v", ns, err)
	}
}

// The etcd member restarts: the nodes re-register themselves and their
// objects, and the cluster serves again.
func TestEtcdRestart(t *testing.T) {
	etcd := clustertest.StartEmbedded(t)
	urls := strings.Join(etcd.Endpoints(), ",")
	a := testutil.StartNode(t, "a", "32MiB", "--etcd", urls, "--lease-ttl", "2s")
	b := testutil.StartNode(t, "b", "32MiB", "--etcd", urls, "--lease-ttl", "2s")
	id, _ := testutil.StoreClient(t, b.Socket).Put(bg, testutil.Pattern(1<<20, 22), nil)
	ca := streamClient(t, a.Addr)
	waitHolders(t, ca, id, "[b]")

	etcd.Stop()
	time.Sleep(3 * time.Second) // past the lease TTL, while etcd is down
	etcd.Start(t)
	waitHolders(t, ca, id, "[b]")
	deadline := time.Now().Add(20 * time.Second)
	for ns, _ := ca.Nodes(bg); len(ns) != 2; ns, _ = ca.Nodes(bg) {
		if time.Now().After(deadline) {
			t.Fatalf("nodes after the etcd restart: %+v", ns)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := ca.Fetch(bg, []stream.ObjectID{id}); err != nil {
		t.Fatalf("fetch after the etcd restart: %v", err)
	}
}
