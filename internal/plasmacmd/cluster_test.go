package plasmacmd_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/cluster/clustertest"
	"github.com/plasmastream/plasmastream/internal/testutil"
)

// The cluster commands of the plasma tool against three real nodes.
func TestClusterCommands(t *testing.T) {
	etcd := testutil.FreeAddr(t)
	var nodes []*testutil.Node
	for i, name := range []string{"a", "b", "c"} {
		args := []string{"--lease-ttl", "2s", "--group", "all"}
		if i == 0 {
			args = append(args, "--etcd", "embedded", "--etcd-dir", filepath.Join(t.TempDir(), "etcd"), "--etcd-listen", etcd)
		} else {
			args = append(args, "--etcd", "http://"+etcd)
		}
		nodes = append(nodes, testutil.StartNode(t, name, "32MiB", args...))
	}
	bin := filepath.Join(testutil.Binaries(t), "plasma")
	on := func(n *testutil.Node) *cli { return &cli{t: t, bin: bin, sock: n.Socket} }
	a, b, c := on(nodes[0]), on(nodes[1]), on(nodes[2])
	withAddr := func(n *testutil.Node, args ...string) []string { return append([]string{"-a", n.Addr}, args...) }

	var listed []map[string]any
	if err := json.Unmarshal([]byte(a.ok(nil, withAddr(nodes[0], "nodes", "--json")...)), &listed); err != nil || len(listed) != 3 {
		t.Fatalf("nodes --json: %v %v", listed, err)
	}
	for _, n := range listed {
		if n["name"] == nil || n["address"] == nil || n["groups"] == nil {
			t.Fatalf("node entry %v lacks name, address or groups", n)
		}
	}

	file := filepath.Join(t.TempDir(), "in")
	os.WriteFile(file, []byte(strings.Repeat("spread me ", 100000)), 0o644)
	out, errs, ok := a.run(nil, withAddr(nodes[0], "put", "--prefetch-group", "all", "--wait", file)...)
	id := strings.TrimSpace(out)
	if !ok || len(id) != 40 || !strings.Contains(errs, "b") || !strings.Contains(errs, "ok") {
		t.Fatalf("put --prefetch-group --wait: %q %q", out, errs)
	}
	if got := c.ok(nil, "get", "--local", id); len(got) != 1000000 {
		t.Fatalf("object not prefetched to c: %d bytes", len(got))
	}
	waitLocate(t, a, nodes[0], id, 3)

	// A local miss on b is fetched from the cluster.
	b.ok(nil, withAddr(nodes[1], "rm", id)...)
	if got := b.ok(nil, withAddr(nodes[1], "get", id)...); len(got) != 1000000 {
		t.Fatalf("get fell back to the cluster with %d bytes", len(got))
	}
	b.fail("not in the store", "get", "--local", "ffffffffffffffffffffffffffffffffffffffff")

	// Deleted everywhere.
	a.ok(nil, withAddr(nodes[0], "rm", "--cluster", id)...)
	waitLocate(t, a, nodes[0], id, 0)
	for _, n := range []*cli{a, b, c} {
		n.fail("not in the store", "get", "--local", id)
	}
}

// While etcd hangs, the cluster commands fail within seconds with one line
// saying so, the local ones work, and once etcd answers again the cluster
// commands do too.
func TestClusterCommandsWhileEtcdHangs(t *testing.T) {
	etcd := clustertest.StartExternal(t, 1)
	urls := strings.Join(etcd.Endpoints(), ",")
	n := testutil.StartNode(t, "a", "32MiB", "--etcd", urls, "--lease-ttl", "2s", "--group", "all")
	bin := filepath.Join(testutil.Binaries(t), "plasma")
	a := &cli{t: t, bin: bin, sock: n.Socket}
	file := filepath.Join(t.TempDir(), "in")
	os.WriteFile(file, []byte(strings.Repeat("still here ", 1000)), 0o644)
	id := strings.TrimSpace(a.ok(nil, "put", file))
	waitLocate(t, a, n, id, 1)

	etcd.Pause(0)
	want := "cluster directory unavailable: etcd at " + urls + " did not answer within 3s; local objects are still served"
	for _, args := range [][]string{
		{"nodes"},
		{"locate", id},
		{"get", "ffffffffffffffffffffffffffffffffffffffff"},
		{"rm", "--cluster", id},
		{"put", "--prefetch-group", "all", "--wait", file},
	} {
		// The old wait (30 s) ends with this deadline instead.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, bin, append([]string{"-s", n.Socket, "-a", n.Addr}, args...)...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "plasma: ") || !strings.Contains(string(out), want) {
			t.Errorf("plasma %s with etcd hung: %v %q, want a failure saying %q", strings.Join(args, " "), err, out, want)
		}
	}
	if got := a.ok(nil, "get", "--local", id); len(got) != 11000 {
		t.Fatalf("local get with etcd hung: %d bytes", len(got))
	}
	etcd.Resume(0)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, errs, ok := a.run(nil, "-a", n.Addr, "locate", id)
		if ok && strings.HasPrefix(out, "a\t") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("locate after etcd came back: %q %q", out, errs)
		}
	}
}

func waitLocate(t *testing.T, c *cli, n *testutil.Node, id string, want int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var locs []map[string]any
		json.Unmarshal([]byte(c.ok(nil, "-a", n.Addr, "locate", "--json", id)), &locs)
		if len(locs) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("locate %s: %d holders, want %d", id, len(locs), want)
		}
	}
}

// plasma pull: a verified fetch from the nodes named, without a cluster.
func TestPull(t *testing.T) {
	a := testutil.StartNode(t, "a", "32MiB")
	c := testutil.StartNode(t, "c", "32MiB")
	b := testutil.StartNode(t, "b", "32MiB")
	bin := filepath.Join(testutil.Binaries(t), "plasma")
	on := func(n *testutil.Node) *cli { return &cli{t: t, bin: bin, sock: n.Socket} }
	data := []byte(strings.Repeat("pull me from two nodes ", 500000))
	file := filepath.Join(t.TempDir(), "in")
	os.WriteFile(file, data, 0o644)
	id := strings.TrimSpace(on(a).ok(nil, "put", file))
	on(c).ok(nil, "put", file) // content-addressed: the same id

	out, errs, ok := on(b).run(nil, "-a", b.Addr, "pull", id, "--from", "a="+a.Addr, "--from", "c="+c.Addr)
	if !ok || !strings.HasPrefix(out, "ok: "+id) || !strings.Contains(errs, "a ("+a.Addr+"): ") || !strings.Contains(errs, "c ("+c.Addr+"): ") {
		t.Fatalf("pull: %q %q", out, errs)
	}
	if got := on(b).ok(nil, "get", "--local", id); got != string(data) {
		t.Fatalf("pulled %d bytes, want %d", len(got), len(data))
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(on(b).ok(nil, "-a", b.Addr, "pull", id, "--from", a.Addr, "--json")), &res); err != nil || res["status"] != "already present" {
		t.Fatalf("pull --json of a present object: %v %v", res, err)
	}

	dead := testutil.FreeAddr(t)
	missing := "ffffffffffffffffffffffffffffffffffffffff"
	on(b).fail("nowhere ("+dead+")", "-a", b.Addr, "pull", missing, "--from", "nowhere="+dead)
	on(b).fail("at least one --from", "-a", b.Addr, "pull", missing)
}
