package plasmacmd_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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
	nc1, nc2 := connect(t, site1), connect(t, site2)
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
		var r bridge.Replication
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			out, err := testutil.RunBinary(t, "plasma", "replication", "--json", "--nats", site2, "--node", b.Name, "sensors.*")
			if err != nil {
				t.Fatalf("plasma replication --json --node %s: %v: %s", b.Name, err, out)
			}
			r = bridge.Replication{}
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("plasma replication --json printed %q: %v", out, err)
			}
			if len(r.Subjects) == 1 && r.Subjects[0].Blobs[0].State == bridge.StateReplicated {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not replicate the blob announced at site 1: %+v", b.Name, r)
			}
		}
		if s := r.Subjects[0]; s.Subject != "sensors.temp" || s.Blobs[0].ID != id || s.Blobs[0].Holders[0].Node != "a" {
			t.Errorf("%s's report: %+v", b.Name, r)
		}
		obj, err := testutil.StoreClient(t, b.Socket).GetVerified(context.Background(), id, 0)
		if err != nil || string(obj.Data) != string(data) {
			t.Fatalf("%s's copy: %v", b.Name, err)
		}
	}
}
