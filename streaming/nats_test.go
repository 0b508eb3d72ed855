package streaming_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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

// The memory a node holds for NATS is bounded: beyond
// streamers.nats.max-pending bytes held while NATS is away, the oldest
// blocks are dropped, counted in the metrics; the first commit after
// says how many (prev), the newest held block is published once NATS is
// back, nothing twice, and the node goes on.
func TestStateNATSMaxPending(t *testing.T) {
	nats := startExternalNATS(t)
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	c := testutil.StoreClient(t, sock)
	metrics := testutil.FreeAddr(t)
	srv := startServer(t, sock, "mp", "--store.streamers", "nats", "--store.block-interval", "20ms", "--nats", nats.url(),
		"--streamers.nats.max-pending", "1", "--metrics-addr", metrics)
	waitFor(t, "the start block", func() int { _, b := natsChanges(t, nats.url(), "mp"); return len(b) }, func(n int) bool { return n == 1 })
	nats.kill()
	waitFor(t, "the node to see NATS gone", func() string { return httpGet(metrics, "/readyz") },
		func(s string) bool { return strings.Contains(s, "is not connected") })
	// Three blocks while NATS is away; max-pending 1 byte holds only the
	// newest.
	var during []store.ObjectID
	for i := range 3 {
		during = append(during, put(t, c, "during"+strconv.Itoa(i), ""))
		if i == 0 {
			waitFor(t, "block 2 held", srv.stderr.String, func(s string) bool { return strings.Contains(s, "holding blocks until NATS is back") })
			continue
		}
		waitFor(t, "the block committed", func() float64 {
			return metric(t, metrics, `plasma_stream_state_blocks_lost_total{streamer="nats"}`)
		}, func(v float64) bool { return v >= float64(i) })
	}
	nats.start(t)
	// The newest block held is published (before the next change: a
	// second block would push it out of max-pending too).
	waitFor2(t, nats.url(), "mp", 1)
	after := put(t, c, "after", "")
	cs, blocks := waitFor2(t, nats.url(), "mp", 2)
	if got, want := strings.Join(objectSets(cs), " "), hexID(during[2])+" "+hexID(after); got != want {
		t.Fatalf("objects read back from NATS: %s, want %s (the newest block held, then the one after)", got, want)
	}
	if lost := metric(t, metrics, `plasma_stream_state_blocks_lost_total{streamer="nats"}`); lost != 2 {
		t.Fatalf("%v blocks counted lost, want 2", lost)
	}
	var nums []uint64
	for _, b := range blocks {
		nums = append(nums, b.Number)
	}
	if len(blocks) != 3 || nums[0] != 1 || nums[1] != 4 || blocks[1].Meta.Prev != 1 || blocks[1].Meta.Lost() != 2 || blocks[2].Meta.Prev != 4 {
		t.Fatalf("blocks %v (prev of the second: %d); want 1, then 4 with prev 1 (blocks 2 and 3 dropped), then 5", nums, blocks[1].Meta.Prev)
	}
	select {
	case <-srv.exited:
		t.Fatalf("the server stopped:\n%s", srv.stderr.String())
	default:
	}
}

// NATS unreachable when a node starts (stop-node-on-error = false): with
// the file streamer beside it, the node starts, numbering on from its
// files, and NATS gets the blocks when it comes, after those of the
// earlier run; with the NATS streamer alone the node cannot know where
// the stream's numbers stop, and refuses to start, saying why.
func TestStateNATSDownAtStart(t *testing.T) {
	nats := startExternalNATS(t)
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	c := testutil.StoreClient(t, sock)
	dir := t.TempDir()
	args := []string{"--store.streamers", "file,nats", "--store.block-interval", "20ms", "--streamers.file.write_dir", dir, "--nats", nats.url()}
	srv := startServer(t, sock, "d", args...)
	id1 := put(t, c, "first", "")
	_, before := waitFor2(t, nats.url(), "d", 1)
	srv.kill(t)
	nats.kill()

	ctx, cancel := context.WithTimeout(bg, time.Minute) // a server that starts is killed then
	defer cancel()
	b, err := exec.CommandContext(ctx, filepath.Join(testutil.Binaries(t), "plasma-stream-server"), "-s", sock, "--bind", "127.0.0.1",
		"-p", strconv.Itoa(testutil.FreePort(t, "127.0.0.1")), "--node-name", "d", "--store.streamers", "nats", "--nats", nats.url()).CombinedOutput()
	if out := string(b); err == nil || ctx.Err() != nil || !strings.Contains(out, "no other streamer holds the block numbers") ||
		!strings.Contains(out, "add the file streamer") {
		t.Fatalf("the NATS streamer alone, NATS unreachable: %v\n%s\nwant a refusal to start", err, out)
	}

	srv = startServer(t, sock, "d", args...)
	id2 := put(t, c, "second", "")
	waitFor(t, "the block in the files", func() []change { cs, _ := fileChanges(t, dir, ""); return cs },
		func(cs []change) bool { return slices.Contains(cs, change{"objects", "set", hexID(id2)}) })
	nats.start(t)
	cs, blocks := waitFor2(t, nats.url(), "d", 2) // id1 (again in the restart's snapshot: one set), id2
	last := before[len(before)-1].Number
	var start *readBlockT
	for i, b := range blocks {
		if i > 0 && b.Number <= blocks[i-1].Number {
			t.Fatalf("block %d after block %d in the stream", b.Number, blocks[i-1].Number)
		}
		if b.Number > last && start == nil {
			start = b
		}
	}
	if start == nil || start.Number != last+1 || !start.Meta.Start {
		t.Fatalf("after block %d of the first run the stream holds %+v: want the restart's start block, numbered next", last, start)
	}
	sets := objectSets(cs)
	if sets[0] != hexID(id1) || sets[len(sets)-1] != hexID(id2) {
		t.Fatalf("objects in the stream: %v", sets)
	}
}
