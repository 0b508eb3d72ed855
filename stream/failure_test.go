package stream_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/internal/wire"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// A peer killed (SIGKILL) in the middle of sending an object: the object
// is reported lost with the peer named, never sealed, its verified part
// kept only for --resume-keep and then nothing of it stays in the
// destination store, and the destination keeps serving.
func TestPeerKilledMidTransfer(t *testing.T) {
	a := testutil.StartNode(t, "a", "64MiB", "--resume-keep", "1s")
	b := testutil.StartNode(t, "b", "64MiB")
	big, small := store.RandomObjectID(), store.RandomObjectID()
	putID(t, b.Socket, small, []byte("first"), nil)
	putID(t, b.Socket, big, testutil.Pattern(20<<20, 7), nil)
	proxy := testutil.StartProxy(t, b.Addr)
	proxy.StallAt = 10 << 20 // halfway through the big object

	done := make(chan error, 1)
	var res *stream.SyncResult
	go func() {
		var err error
		res, err = streamClient(t, a.Addr).Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: proxy.Addr, Objects: []stream.ObjectID{small, big}}})
		done <- err
	}()
	select {
	case <-proxy.Stalled():
	case <-time.After(20 * time.Second):
		t.Fatal("transfer never reached the middle of the big object")
	}
	b.Stream.Process.Signal(syscall.SIGKILL)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", b.Addr); err != nil {
			break // the process is gone
		} else if c.Close(); time.Now().After(deadline) {
			t.Fatal("SIGKILLed stream server still accepting")
		}
	}
	proxy.Resume()
	select {
	case err := <-done:
		if !stream.IsStatus(err, stream.StatusConnectionLost) {
			t.Fatalf("want connection lost, got %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("SYNC did not end after the peer died")
	}
	objs := res.Peers[0].Objects
	if objs[0].Status != stream.StatusOK || objs[1].Status != stream.StatusConnectionLost {
		t.Fatalf("statuses %s, %s", objs[0].Status, objs[1].Status)
	}
	if !strings.Contains(objs[1].Message, big.String()) || !strings.Contains(objs[1].Message, proxy.Addr) {
		t.Fatalf("message %q must name the object and the peer", objs[1].Message)
	}
	mustHave(t, a.Socket, small, []byte("first"), nil)
	notSealed(t, a.Socket, big)
	if !strings.Contains(objs[1].Message, "kept for a resumption") {
		t.Fatalf("message %q: the verified part should be kept", objs[1].Message)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if st, _ := testutil.StoreClient(t, a.Socket).Stats(bg); st.Objects == 1 || time.Now().After(deadline) {
			break
		}
	}
	mustNotHave(t, a.Socket, big)
	if st, _ := testutil.StoreClient(t, a.Socket).Stats(bg); st.Pinned != 0 || st.Objects != 1 {
		t.Fatalf("destination store after the failure: %+v", st)
	}
	if _, err := streamClient(t, a.Addr).Ping(bg); err != nil {
		t.Fatalf("destination server unhealthy: %v", err)
	}
}

// A byte flipped on the wire fails that object's verification: it is
// never sealed, the other objects of the request arrive, and the counter
// of rejected objects says so.
func TestCorruptedObjectIsRejected(t *testing.T) {
	metricsPort := testutil.FreePort(t, "127.0.0.1")
	a := testutil.StartNode(t, "a", "64MiB", "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsPort))
	b := testutil.StartNode(t, "b", "64MiB")
	bad, good := store.RandomObjectID(), store.RandomObjectID()
	putID(t, b.Socket, bad, testutil.Pattern(6<<20, 8), nil)
	putID(t, b.Socket, good, testutil.Pattern(1000, 9), nil)
	proxy := testutil.StartProxy(t, b.Addr)
	proxy.FlipAt = 3 << 20

	res, err := streamClient(t, a.Addr).Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: proxy.Addr, Objects: []stream.ObjectID{bad, good}}})
	if !stream.IsStatus(err, stream.StatusIntegrityFailure) {
		t.Fatalf("want an integrity failure, got %v", err)
	}
	if o := res.Peers[0].Objects; o[0].Status != stream.StatusIntegrityFailure || o[1].Status != stream.StatusOK {
		t.Fatalf("statuses %s, %s", o[0].Status, o[1].Status)
	}
	mustNotHave(t, a.Socket, bad)
	mustHave(t, a.Socket, good, testutil.Pattern(1000, 9), nil)
	if v := scrape(t, metricsPort, "plasma_stream_integrity_failures_total"); v != 1 {
		t.Fatalf("integrity failures metric = %v", v)
	}
	// The 6 MiB object came with its outboard: the corrupt 16 KiB group
	// was rejected as it landed, 3 MiB in, not after the whole object.
	if v := scrape(t, metricsPort, "plasma_stream_corrupt_groups_total"); v != 1 {
		t.Fatalf("corrupt groups metric = %v", v)
	}
	if v := scrape(t, metricsPort, "plasma_stream_bytes_verified_total"); v < 2<<20 || v >= 3<<20 {
		t.Fatalf("%v bytes verified before the corrupt group at 3 MiB", v)
	}
	if v := scrape(t, metricsPort, "plasma_stream_bytes_received_total"); v != 1000 {
		t.Fatalf("bytes received metric = %v", v)
	}
}

// scrape reads one un-labelled series from a /metrics endpoint.
func scrape(t *testing.T, port int, name string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), name+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

// A destination store too small for an object: "store full", nothing half
// written, the source untouched (even for TAKE), the server still serving.
func TestFullDestinationStore(t *testing.T) {
	a := testutil.StartNode(t, "a", "8MiB")
	b := testutil.StartNode(t, "b", "64MiB")
	big, small := store.RandomObjectID(), store.RandomObjectID()
	putID(t, b.Socket, big, testutil.Pattern(12<<20, 1), nil)
	putID(t, b.Socket, small, []byte("fits"), nil)
	res, err := streamClient(t, a.Addr).Sync(bg, []stream.PeerRequest{{Kind: stream.Take, From: b.Addr, Objects: []stream.ObjectID{big, small}}})
	if !stream.IsStatus(err, stream.StatusStoreFull) {
		t.Fatalf("want store full, got %v", err)
	}
	objs := res.Peers[0].Objects
	if objs[0].Status != stream.StatusStoreFull || objs[0].DeletedAtSource || objs[1].Status != stream.StatusOK || !objs[1].DeletedAtSource {
		t.Fatalf("results %+v", objs)
	}
	mustNotHave(t, a.Socket, big)
	has(t, b.Socket, big, testutil.Pattern(12<<20, 1), nil) // a failed TAKE leaves the source alone
	mustHave(t, a.Socket, small, []byte("fits"), nil)
}

// Connections beyond --max-connections get a clear "server busy", at once.
func TestMaxConnections(t *testing.T) {
	a := testutil.StartNode(t, "a", "8MiB", "-c", "2")
	// The two allowed connections. StartNode's readiness probe counts as a
	// connection until the server has seen it close, so a busy refusal
	// here is retried until then.
	for range 2 {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			c, err := stream.Connect(bg, a.Addr)
			if err == nil {
				t.Cleanup(func() { c.Close() })
				break
			}
			if !stream.IsStatus(err, stream.StatusServerBusy) || time.Now().After(deadline) {
				t.Fatalf("allowed connection: %v", err)
			}
		}
	}
	start := time.Now()
	_, err := stream.Connect(bg, a.Addr)
	if !stream.IsStatus(err, stream.StatusServerBusy) || !strings.Contains(err.Error(), "server busy") {
		t.Fatalf("third connection: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("busy refusal took more than 5 s")
	}
}

// Garbage, oversized frames and silent peers cost their own connection;
// the server keeps serving everyone else.
func TestMalformedAndSilentPeers(t *testing.T) {
	a := testutil.StartNode(t, "a", "8MiB", "--io-timeout", "1s", "--idle-timeout", "2s")
	hello := streamwire.Hello{Version: streamwire.Version, Role: streamwire.RoleClient}
	copy(hello.Magic[:], streamwire.Magic)
	helloFrame := streamwire.AppendFrame(nil, streamwire.TypeHello, hello.Append(nil))
	badVersion := hello
	badVersion.Version = 99
	huge := make([]byte, wire.HeaderSize)
	wire.PutHeader(huge, wire.Header{Length: 0xFFFFFFFF, Type: uint16(streamwire.TypeSync)})
	cases := map[string][][]byte{
		"http request":       {[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		"wrong version":      {streamwire.AppendFrame(nil, streamwire.TypeHello, badVersion.Append(nil))},
		"oversized frame":    {helloFrame, huge},
		"undecodable sync":   {helloFrame, streamwire.AppendFrame(nil, streamwire.TypeSync, []byte{1, 2, 3})},
		"unknown request":    {helloFrame, streamwire.AppendFrame(nil, 999, nil)},
		"silent after hello": {helloFrame},
		"silent":             nil,
	}
	for name, writes := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", a.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, w := range writes {
				c.Write(w)
			}
			// Every such connection ends within the handshake (1 s) or
			// idle (2 s) deadline, and the malformed ones are told why.
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			data, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("server kept a %q connection open: %v", name, err)
			}
			sawError := false
			for r := bytes.NewReader(data); r.Len() > 0; {
				h, p, _, err := wire.ReadFrame(r, nil, 1<<20)
				if err != nil {
					t.Fatalf("server sent bytes that are not frames: %v", err)
				}
				var e streamwire.ErrorReply
				if streamwire.Type(h.Type) == streamwire.TypeError && e.Decode(p) == nil && e.Message != "" {
					sawError = true
				}
			}
			// Malformed input is told why; a silent peer may be (timeout).
			if !sawError && !strings.HasPrefix(name, "silent") {
				t.Fatalf("no error reply to %s", name)
			}
			// The server serves others meanwhile and after (a fresh client:
			// an idle one is itself closed after 2 s).
			if _, err := streamClient(t, a.Addr).Ping(bg); err != nil {
				t.Fatalf("server unhealthy after %s: %v", name, err)
			}
		})
	}
}

// Options come from a TOML file; flags on the command line win.
func TestConfigFile(t *testing.T) {
	sock, _ := testutil.StartStoreProcess(t, "8MiB")
	port := testutil.FreePort(t, "127.0.0.1")
	cfg := filepath.Join(t.TempDir(), "stream.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("port = %d\nbind = \"127.0.0.1\"\nnode-name = \"from-file\"\nmax-connections = 7\n", port)), 0o644)
	testutil.StartProcess(t, "plasma-stream-server", "-s", sock, "--config", cfg, "--node-name", "from-flag")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	testutil.WaitTCP(t, addr)
	if c := streamClient(t, addr); c.Node() != "from-flag" {
		t.Fatalf("node %q: the flag must win over the file", c.Node())
	}
	os.WriteFile(cfg, []byte("no-such-option = 1\n"), 0o644)
	out, err := testutil.RunBinary(t, "plasma-stream-server", "-s", sock, "--config", cfg)
	if err == nil || !strings.Contains(out, `unknown option "no-such-option"`) {
		t.Fatalf("unknown option: %v %q", err, out)
	}
}

// Without a store the server refuses to start, saying what to do.
func TestNoStore(t *testing.T) {
	out, err := testutil.RunBinary(t, "plasma-stream-server", "-s", "/nonexistent.sock", "-p", "0")
	if err == nil || !strings.Contains(out, "start plasma-store-server first") {
		t.Fatalf("without a store: %v %q", err, out)
	}
}

// A RELAY is served while the relaying node still receives the object;
// if that transfer breaks, the relay ends before the end of the data and
// neither node seals anything (nor, with --resume-keep 0, keeps anything).
func TestRelayCutThrough(t *testing.T) {
	a := testutil.StartNode(t, "a", "64MiB")
	b := testutil.StartNode(t, "b", "64MiB", "--resume-keep", "0")
	c := testutil.StartNode(t, "c", "64MiB", "--resume-keep", "0")
	ok, broken := store.RandomObjectID(), store.RandomObjectID()
	putID(t, a.Socket, ok, testutil.Pattern(16<<20, 30), []byte("r"))
	putID(t, a.Socket, broken, testutil.Pattern(16<<20, 31), nil)
	proxy := testutil.StartProxy(t, a.Addr)

	relay := func(node *testutil.Node, from string, id stream.ObjectID) chan error {
		done := make(chan error, 1)
		go func() {
			_, err := streamClient(t, node.Addr).Sync(bg, []stream.PeerRequest{{Kind: stream.Relay, From: from, Objects: []stream.ObjectID{id}}})
			done <- err
		}()
		return done
	}
	// c asks b before b has anything: b waits for its own transfer.
	proxy.StallAt = 8 << 20
	cDone := relay(c, b.Addr, ok)
	time.Sleep(200 * time.Millisecond)
	bDone := relay(b, proxy.Addr, ok)
	<-proxy.Stalled()
	time.Sleep(300 * time.Millisecond)
	// Mid-way: c is receiving (the object exists, unsealed, invisible).
	if sealed, _ := testutil.StoreClient(t, c.Socket).Contains(bg, ok); sealed {
		t.Fatal("c sealed the object before b had it all")
	}
	proxy.Resume()
	if err := <-bDone; err != nil {
		t.Fatalf("b: %v", err)
	}
	if err := <-cDone; err != nil {
		t.Fatalf("c relayed through b: %v", err)
	}
	mustHave(t, c.Socket, ok, testutil.Pattern(16<<20, 30), []byte("r"))

	// The same with the source cut mid-way.
	cut := testutil.StartProxy(t, a.Addr)
	cut.CutAt = 8 << 20
	cDone = relay(c, b.Addr, broken)
	time.Sleep(200 * time.Millisecond)
	bDone = relay(b, cut.Addr, broken)
	if err := <-bDone; err == nil {
		t.Fatal("b succeeded through a cut connection")
	}
	if err := <-cDone; err == nil {
		t.Fatal("c succeeded although b's transfer broke")
	}
	mustNotHave(t, b.Socket, broken)
	mustNotHave(t, c.Socket, broken)
	if _, err := streamClient(t, b.Addr).Ping(bg); err != nil {
		t.Fatal(err)
	}
}

// A peer whose name does not resolve is unreachable, named as such.
func TestUnresolvablePeer(t *testing.T) {
	a := testutil.StartNode(t, "a", "8MiB")
	_, err := streamClient(t, a.Addr).Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: "no-such-host.invalid:2021", Objects: []stream.ObjectID{store.RandomObjectID()}}})
	if !stream.IsStatus(err, stream.StatusPeerUnreachable) || !strings.Contains(err.Error(), "no-such-host.invalid") {
		t.Fatalf("got %v", err)
	}
}
