package plasmacmd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/plasmastream/plasmastream/internal/bridge"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// Two sites of real plasma-stream-server processes, each site with its
// own embedded NATS, joined only by --nats-leaf-listen and --nats-leaf
// (no etcd): a message published at one site reaches a subscriber at the
// other, and a file imported and announced at site 1 replicates to both
// subscribing nodes of site 2, as plasma replication --json shows.
func TestBridgeAcrossSitesProcesses(t *testing.T) {
	leaf, l1, l2 := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
	site1, site2 := "nats://"+l1, "nats://"+l2
	testutil.StartNode(t, "a", "64MiB", "--nats", "embedded", "--nats-listen", l1, "--nats-dir", t.TempDir(), "--nats-leaf-listen", leaf)
	b1 := testutil.StartNode(t, "b1", "64MiB", "--nats", "embedded", "--nats-listen", l2, "--nats-dir", t.TempDir(),
		"--nats-leaf", "nats-leaf://"+leaf, "--subscribe.subjects", "sensors.>")
	b2 := testutil.StartNode(t, "b2", "64MiB", "--nats", site2, "--subscribe.subjects", "sensors.>")

	// The sites' NATS servers carry messages both ways.
	crossSites(t, connect(t, site1), connect(t, site2))

	file := filepath.Join(t.TempDir(), "t.bin")
	data := testutil.Pattern(6<<20, 12)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := testutil.RunBinary(t, "plasma", "import", "--nats", site1, "--node", "a", "--announce", "sensors.temp", file)
	if err != nil {
		t.Fatalf("plasma import --nats at site 1: %v: %s", err, out)
	}
	id, err := store.ParseObjectID(strings.Fields(out)[0])
	if err != nil {
		t.Fatalf("plasma import printed %q", out)
	}
	for _, b := range []*testutil.Node{b1, b2} {
		s := waitReplication(t, site2, b.Name, func(s bridge.BlobReplication) bool { return s.State == bridge.StateReplicated })
		if s.ID != id || s.Holders[0].Node != "a" {
			t.Errorf("%s's report of the blob: %+v", b.Name, s)
		}
		obj, err := testutil.StoreClient(t, b.Socket).GetVerified(context.Background(), id, 0)
		if err != nil || string(obj.Data) != string(data) {
			t.Fatalf("%s's copy: %v", b.Name, err)
		}
	}
}

// A blob's only announcer at site 1, a real process, is killed (SIGKILL)
// while both subscribers of site 2 fetch from it; once another holder
// announces it, each subscriber finishes from there, resuming from the
// groups it verified instead of starting again at byte 0.
func TestReplicationSourceKilledProcesses(t *testing.T) {
	leaf, l1, l2 := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
	site1, site2 := "nats://"+l1, "nats://"+l2
	const size = 24 << 20
	// a1 is seen through a proxy that lets a third of the blob through in
	// all, so that neither subscriber can finish from a1 or the other.
	// Site 1's NATS is a2's: a1 dies alone.
	a2 := testutil.StartNode(t, "a2", "64MiB", "--nats", "embedded", "--nats-listen", l1, "--nats-dir", t.TempDir(), "--nats-leaf-listen", leaf)
	port := testutil.FreePort(t, "127.0.0.1")
	proxy := testutil.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", port), func(p *testutil.Proxy) { p.StallTotalAt = size / 3 })
	sock1, _ := testutil.StartStoreProcess(t, "64MiB")
	a1 := exec.Command(filepath.Join(testutil.Binaries(t), "plasma-stream-server"), "-s", sock1, "-p", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--node-name", "a1", "--advertise", proxy.Addr, "--log-level", "warn",
		"--nats", site1)
	a1.Stderr = testWriter{t, "a1"}
	a1Exited := testutil.Run(t, a1)
	testutil.WaitTCP(t, fmt.Sprintf("127.0.0.1:%d", port))
	var subs []*testutil.Node
	subs = append(subs, testutil.StartNode(t, "b1", "64MiB", "--nats", "embedded", "--nats-listen", l2, "--nats-dir", t.TempDir(),
		"--nats-leaf", "nats-leaf://"+leaf, "--subscribe.subjects", "sensors.>"))
	subs = append(subs, testutil.StartNode(t, "b2", "64MiB", "--nats", site2, "--subscribe.subjects", "sensors.>"))
	nc1 := connect(t, site1)
	crossSites(t, nc1, connect(t, site2))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := nc1.Request("plasma.stat.a1", nil, time.Second); err == nil {
			break // a1's bridge answers
		} else if time.Now().After(deadline) {
			t.Fatalf("a1's bridge does not answer: %v", err)
		}
	}

	data := testutil.Pattern(size, 13)
	var id store.ObjectID
	for _, sock := range []string{sock1, a2.Socket} {
		var err error
		if id, err = testutil.StoreClient(t, sock).Put(context.Background(), data, nil); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := testutil.RunBinary(t, "plasma", "announce", "--nats", site1, "--node", "a1", id.String(), "sensors.temp"); err != nil {
		t.Fatalf("plasma announce from a1: %v: %s", err, out)
	}
	<-proxy.Stalled()
	a1.Process.Kill() // the source dies mid-transfer
	<-a1Exited
	proxy.Kill()
	for _, b := range subs {
		waitReplication(t, site2, b.Name, func(s bridge.BlobReplication) bool { return s.State == bridge.StateFailed })
	}
	if out, err := testutil.RunBinary(t, "plasma", "announce", "--nats", site1, "--node", "a2", id.String(), "sensors.temp"); err != nil {
		t.Fatalf("plasma announce from a2: %v: %s", err, out)
	}
	var resumed uint64
	for _, b := range subs {
		s := waitReplication(t, site2, b.Name, func(s bridge.BlobReplication) bool { return s.State == bridge.StateReplicated })
		obj, err := testutil.StoreClient(t, b.Socket).GetVerified(context.Background(), id, 0)
		if err != nil || string(obj.Data) != string(data) {
			t.Fatalf("%s's copy: %v", b.Name, err)
		}
		if s.Attempts < 2 {
			t.Errorf("%s: %d attempts; want the one cut by a1's death and the next", b.Name, s.Attempts)
		}
		resumed += s.Resumed
		t.Logf("%s: %d attempts, resumed at %d bytes", b.Name, s.Attempts, s.Resumed)
	}
	if resumed == 0 {
		t.Error("no subscriber resumed: both started again from byte 0 after a1 died")
	}
}

// crossSites waits until a message published at either site's NATS
// reaches a subscriber at the other.
func crossSites(t *testing.T, nc1, nc2 *nats.Conn) {
	t.Helper()
	for _, pair := range [][2]*nats.Conn{{nc1, nc2}, {nc2, nc1}} {
		sub, err := pair[1].SubscribeSync("probe.sites")
		if err != nil {
			t.Fatal(err)
		}
		pair[1].Flush()
		for deadline := time.Now().Add(time.Minute); ; {
			pair[0].Publish("probe.sites", []byte("hello"))
			if _, err := sub.NextMsg(100 * time.Millisecond); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no message crossed between the sites' NATS servers")
			}
		}
		sub.Unsubscribe()
	}
}

// waitReplication polls plasma replication --json of node until its one
// blob satisfies cond, and returns it.
func waitReplication(t *testing.T, url, node string, cond func(bridge.BlobReplication) bool) bridge.BlobReplication {
	t.Helper()
	var r bridge.Replication
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		out, err := testutil.RunBinary(t, "plasma", "replication", "--json", "--nats", url, "--node", node)
		if err != nil {
			t.Fatalf("plasma replication --json --node %s: %v: %s", node, err, out)
		}
		r = bridge.Replication{}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("plasma replication --json printed %q: %v", out, err)
		}
		if len(r.Subjects) == 1 && len(r.Subjects[0].Blobs) == 1 && cond(r.Subjects[0].Blobs[0]) {
			return r.Subjects[0].Blobs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting on %s's replication: %+v", node, r)
		}
	}
}
