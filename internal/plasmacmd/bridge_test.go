package plasmacmd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/bridge"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// plasma import --nats, plasma announce and plasma replication against
// two real plasma-stream-server processes sharing the first one's
// embedded NATS.
func TestBridgeCommands(t *testing.T) {
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t, "127.0.0.1"))
	url := "nats://" + listen
	testutil.StartNode(t, "a", "64MiB", "--nats", "embedded", "--nats-listen", listen, "--nats-dir", t.TempDir())
	b := testutil.StartNode(t, "b", "64MiB", "--nats", url, "--subscribe.subjects", "docs.>")
	file := filepath.Join(t.TempDir(), "report.pdf")
	data := testutil.Pattern(3<<20, 8)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := testutil.RunBinary(t, "plasma", "import", "--nats", url, "--node", "a", "--announce", "docs.q1", file)
	if err != nil {
		t.Fatalf("plasma import --nats: %v: %s", err, out)
	}
	f := strings.Fields(out)
	if len(f) != 2 || len(f[0]) != 40 || !strings.HasPrefix(f[1], f[0]) {
		t.Fatalf("plasma import --nats printed %q; want ID HASH", out)
	}
	id, _ := store.ParseObjectID(f[0])
	var r bridge.Replication
	deadline := time.Now().Add(time.Minute)
	for len(r.Subjects) == 0 || r.Subjects[0].Blobs[0].State != bridge.StateReplicated {
		if time.Now().After(deadline) {
			t.Fatalf("b did not replicate: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
		out, err = testutil.RunBinary(t, "plasma", "replication", "--json", "--nats", url, "--node", "b")
		if err != nil {
			t.Fatalf("plasma replication --json: %v: %s", err, out)
		}
		r = bridge.Replication{}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("plasma replication --json printed %q: %v", out, err)
		}
	}
	if b := r.Subjects[0].Blobs[0]; r.Subjects[0].Subject != "docs.q1" || b.ID != id || b.Name != "report.pdf" {
		t.Fatalf("replication report %+v", r)
	}
	st := testutil.StoreClient(t, b.Socket)
	if _, err := st.GetVerified(context.Background(), id, 0); err != nil {
		t.Fatalf("b's copy: %v", err)
	}
	out, err = testutil.RunBinary(t, "plasma", "replication", "--nats", url, "--node", "b")
	if err != nil || !strings.Contains(out, "docs.q1") || !strings.Contains(out, "replicated") {
		t.Fatalf("plasma replication: %v: %s", err, out)
	}
	out, err = testutil.RunBinary(t, "plasma", "announce", "--nats", url, "--node", "a", f[0], "docs.q2")
	if err != nil || !strings.Contains(out, "announced "+f[1]) {
		t.Fatalf("plasma announce: %v: %s", err, out)
	}
	out, err = testutil.RunBinary(t, "plasma", "import", "--nats", url, "/no/such/file")
	if err == nil || !strings.Contains(out, "no such file") {
		t.Fatalf("plasma import --nats of a missing file: %v: %s", err, out)
	}
	out, err = testutil.RunBinary(t, "plasma", "replication", "--nats", url, "--node", "nobody")
	if err == nil || !strings.Contains(out, "no node answers") {
		t.Fatalf("plasma replication --node nobody: %v: %s", err, out)
	}
}
