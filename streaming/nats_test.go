package streaming_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/streaming"
)

// natsServerBinary is Debian's nats-server (package nats-server, 2.9.10):
// the external NATS of these tests. Missing, the test fails: install it.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nats-server", "/usr/bin/nats-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("nats-server not found (neither on PATH nor in /usr/sbin, /usr/bin): install Debian's package: apt-get install nats-server")
	return ""
}

// externalNATS is a nats-server process with JetStream.
type externalNATS struct {
	bin, dir, addr string
	cmd            *exec.Cmd
	exited         <-chan struct{}
}

func startExternalNATS(t *testing.T) *externalNATS {
	n := &externalNATS{bin: natsServerBinary(t), dir: t.TempDir(), addr: testutil.FreeAddr(t)}
	n.start(t)
	return n
}

func (n *externalNATS) start(t *testing.T) {
	t.Helper()
	_, port, _ := strings.Cut(n.addr, ":")
	n.cmd = exec.Command(n.bin, "-js", "-sd", n.dir, "-a", "127.0.0.1", "-p", port)
	n.exited = testutil.Run(t, n.cmd)
	testutil.WaitTCP(t, n.addr)
}

func (n *externalNATS) kill() {
	n.cmd.Process.Kill()
	<-n.exited
}

func (n *externalNATS) url() string { return "nats://" + n.addr }

// objectSets are the ids of the `objects` sets among changes, in order.
func objectSets(cs []change) []string {
	var out []string
	for _, c := range objectsChanges(cs) {
		if c.op == "set" {
			out = append(out, c.key)
		}
	}
	return out
}

func hexIDs(ids []store.ObjectID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = hexID(id)
	}
	return out
}

// An external nats-server killed and restarted under a running node
// (stop-node-on-error = false): the blocks committed meanwhile are held
// and published when it returns, each exactly once, numbers without a
// gap.
func TestStateNATSExternalOutage(t *testing.T) {
	nats := startExternalNATS(t)
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	c := testutil.StoreClient(t, sock)
	httpAddr := testutil.FreeAddr(t)
	srv := startServer(t, sock, "n1", "--store.streamers", "nats", "--store.block-interval", "20ms", "--nats", nats.url(), "--http-addr", httpAddr)
	var ids []store.ObjectID
	putSome := func(tag string) {
		for i := range 3 {
			ids = append(ids, put(t, c, tag+strconv.Itoa(i), ""))
		}
	}
	putSome("before")
	waitFor(t, "blocks before the outage", func() []string { cs, _ := natsChanges(t, nats.url(), "n1"); return objectSets(cs) },
		func(s []string) bool { return len(s) == 3 })
	nats.kill()
	putSome("during")
	// The node holds the blocks it could not publish.
	waitFor(t, "the node to hold blocks", srv.stderr.String, func(s string) bool { return strings.Contains(s, "holding blocks until NATS is back") })
	// The dashboard shows the NATS streamer's lag: the blocks it holds.
	lag := func() streaming.Backlog {
		var st struct {
			Sections []struct {
				Name string `json:"name"`
				Data struct {
					Lag map[string]streaming.Backlog `json:"lag"`
				} `json:"data"`
			} `json:"sections"`
		}
		resp, err := http.Get("http://" + httpAddr + "/api/state")
		if err != nil {
			return streaming.Backlog{}
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&st)
		for _, sec := range st.Sections {
			if sec.Name == "streaming" {
				return sec.Data.Lag["nats"]
			}
		}
		return streaming.Backlog{}
	}
	waitFor(t, "the dashboard to show the held blocks as lag", lag, func(b streaming.Backlog) bool { return b.Blocks > 0 && b.Bytes > 0 })
	nats.start(t)
	putSome("after")
	cs, blocks := waitFor2(t, nats.url(), "n1", len(ids))
	waitFor(t, "the lag to go once NATS is back", lag, func(b streaming.Backlog) bool { return b.Blocks == 0 })
	if got, want := strings.Join(objectSets(cs), " "), strings.Join(hexIDs(ids), " "); got != want {
		t.Fatalf("objects read back from NATS:\n%s\nwant\n%s", got, want)
	}
	for i, b := range blocks {
		if i > 0 && (b.Number != blocks[i-1].Number+1 || b.Meta.Prev != blocks[i-1].Number) {
			t.Fatalf("block %d (prev %d) follows block %d: a gap or a duplicate", b.Number, b.Meta.Prev, blocks[i-1].Number)
		}
	}
}

// waitFor2 waits until node's stream holds n object sets.
func waitFor2(t *testing.T, url, node string, n int) ([]change, []*readBlockT) {
	t.Helper()
	var cs []change
	var blocks []*readBlockT
	waitFor(t, "every object in NATS", func() int {
		cs, blocks = natsChanges(t, url, node)
		return len(objectSets(cs))
	}, func(got int) bool { return got >= n })
	return cs, blocks
}

// With stop-node-on-error = true, NATS going away stops the node.
func TestStateNATSStopNodeOnError(t *testing.T) {
	nats := startExternalNATS(t)
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	c := testutil.StoreClient(t, sock)
	srv := startServer(t, sock, "n2", "--store.streamers", "nats", "--store.block-interval", "20ms", "--nats", nats.url(),
		"--streamers.nats.stop-node-on-error=true")
	waitFor(t, "the start block", func() int { _, b := natsChanges(t, nats.url(), "n2"); return len(b) }, func(n int) bool { return n == 1 })
	nats.kill()
	put(t, c, "x", "")
	if code := srv.waitExit(t); code == 0 {
		t.Fatal("exit status 0 after a block could not be published")
	}
	if msg := srv.stderr.String(); !strings.Contains(msg, "could not be published to NATS stream PLASMA_STATE") {
		t.Fatalf("stderr does not say why the node stopped:\n%s", msg)
	}
}

// A node with the embedded NATS server, SIGKILLed and restarted on the
// same --nats-dir: the stream keeps every committed block, numbering goes
// on, and the restart's start block carries the objects.
func TestStateEmbeddedNATSRestart(t *testing.T) {
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	c := testutil.StoreClient(t, sock)
	natsDir, natsAddr := t.TempDir(), testutil.FreeAddr(t)
	args := []string{"--store.streamers", "nats", "--store.block-interval", "20ms", "--nats", "embedded", "--nats-dir", natsDir, "--nats-listen", natsAddr}
	srv := startServer(t, sock, "e", args...)
	url := "nats://" + natsAddr
	id1 := put(t, c, "first", "")
	_, before := waitFor2(t, url, "e", 1)
	srv.kill(t)
	startServer(t, sock, "e", args...)
	id2 := put(t, c, "second", "")
	cs, blocks := waitFor2(t, url, "e", 2) // id1 (again in the snapshot: one set), id2
	var start *readBlockT
	for _, b := range blocks {
		if b.Number > before[len(before)-1].Number && b.Meta.Start {
			start = b
			break
		}
	}
	if start == nil || start.Number != before[len(before)-1].Number+1 || !start.Meta.Snapshot || len(start.Pairs) != 1 {
		t.Fatalf("after block %d the restart's blocks are %+v: want a start block numbered next, with a snapshot of 1 object",
			before[len(before)-1].Number, blocks)
	}
	if got := objectSets(cs); got[len(got)-1] != hexID(id2) || got[0] != hexID(id1) {
		t.Fatalf("objects: %v", got)
	}
}

type readBlockT = streaming.ReadBlock
