package stream_test

import (
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/stream"
)

// jsonLines parses log output of --log-format json: every line one JSON
// object.
func jsonLines(t *testing.T, who, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%s: a log line that is not JSON: %q: %v", who, line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// find returns the first record with message msg, or nil.
func find(recs []map[string]any, msg string) map[string]any {
	for _, r := range recs {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

// --log-level filters by component and --log-format json writes one
// object a line, on the real stream server: with warn,transfer=debug,
// conn=error a SYNC's transfer is logged at debug, while an info line
// without a component and a conn warning (which the server at the
// default filter does write) are not.
func TestStreamServerLogFilters(t *testing.T) {
	a := testutil.StartNode(t, "a", "16MiB", "--log-level", "warn,transfer=debug,conn=error", "--log-format", "json")
	b := testutil.StartNode(t, "b", "16MiB") // --log-level warn, text
	id, err := testutil.StoreClient(t, b.Socket).Put(bg, testutil.Pattern(1<<20, 7), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := streamClient(t, a.Addr).Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: b.Addr, Objects: []stream.ObjectID{id}}})
	if err != nil || res.Peers[0].Status != stream.StatusOK {
		t.Fatalf("sync: %v %+v", err, res)
	}
	// A peer that sends garbage instead of a HELLO: a conn warning.
	for _, n := range []*testutil.Node{a, b} {
		c, err := net.Dial("tcp", n.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n this is not a hello frame at all, not at all"))
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.Log.String(), "handshake failed") {
		if time.Now().After(deadline) {
			t.Fatalf("b logged no handshake failure:\n%s", b.Log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(b.Log.String(), "level=WARN") || strings.Contains(b.Log.String(), `{"time"`) {
		t.Errorf("b (text) logged:\n%s", b.Log.String())
	}
	time.Sleep(200 * time.Millisecond) // a had as long to log the same

	recs := jsonLines(t, "a", a.Log.String())
	done := find(recs, "transfer finished")
	if done == nil || done["level"] != "DEBUG" || done["component"] != "transfer" || done["kind"] != "sync COPY" ||
		done["peer"] != b.Addr || done["bytes"] != float64(1<<20) {
		t.Errorf("a's transfer line: %v\nlog:\n%s", done, a.Log.String())
	}
	if find(recs, "transfer started") == nil {
		t.Errorf("a logged no transfer start:\n%s", a.Log.String())
	}
	for _, r := range recs {
		if r["level"] == "DEBUG" || r["level"] == "INFO" {
			if r["component"] != "transfer" {
				t.Errorf("a logged below warn outside component transfer: %v", r)
			}
		}
		if r["component"] == "conn" && r["level"] != "ERROR" {
			t.Errorf("a logged a conn line below error: %v", r)
		}
	}
}

// The store server takes the same flags: warn,client=debug in JSON logs
// a client's connection at debug but not the info line of its start.
func TestStoreServerLogFilters(t *testing.T) {
	sock := filepath.Join(testutil.ShortDir(t), "store.sock")
	var out testutil.Buffer
	cmd := exec.Command(filepath.Join(testutil.Binaries(t), "plasma-store-server"), "-m", "1MiB", "-s", sock,
		"--log-level", "warn,client=debug", "--log-format", "json")
	cmd.Stderr = &out
	exited := testutil.Run(t, cmd)
	testutil.WaitSocket(t, sock, exited)
	testutil.StoreClient(t, sock)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "client connected") {
		if time.Now().After(deadline) {
			t.Fatalf("no client connection logged:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	recs := jsonLines(t, "store", out.String())
	if r := find(recs, "client connected"); r["level"] != "DEBUG" || r["component"] != "client" {
		t.Errorf("client line: %v", r)
	}
	if r := find(recs, "store serving"); r != nil {
		t.Errorf("an info line without a component at warn: %v", r)
	}
}
