package bridge_test

import (
	"encoding/json"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/plasmastream/plasmastream/internal/bridge"
	"github.com/plasmastream/plasmastream/internal/natsconn"
	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/testnode"
	"github.com/plasmastream/plasmastream/internal/testutil"
)

// Nodes here are in-process stores and stream servers (testnode) with
// real NATS: each one's embedded server, or Debian's nats-server run as
// a process. No node has an etcd: the sites share nothing but NATS.

const storeSize = 96 << 20

// embedded gives a node its own embedded NATS server.
func embedded(t *testing.T, sites natsconn.Sites) func(*streamserver.Config) {
	dir := t.TempDir()
	return func(c *streamserver.Config) {
		c.NATS = natsconn.Config{Servers: natsconn.Embedded, Listen: "127.0.0.1:0", Dir: dir, Sites: sites}
	}
}

// via connects a node to the NATS at url.
func via(url string) func(*streamserver.Config) {
	return func(c *streamserver.Config) { c.NATS = natsconn.Config{Servers: url} }
}

// subscribe makes a node replicate subjects.
func subscribe(subjects ...string) func(*streamserver.Config) {
	return func(c *streamserver.Config) { c.Bridge.Subscribe = subjects }
}

// defaults are plasma-stream-server's defaults that testnode leaves out:
// the verified part of a failed fetch is kept for the next, and
// announcements are kept in JetStream.
func defaults(c *streamserver.Config) { c.ResumeKeep, c.Bridge.Keep = time.Minute, bridge.DefaultKeep }

// unkept turns off keeping announcements: plain NATS subscriptions.
func unkept(c *streamserver.Config) { c.Bridge.Keep = 0 }

// behindProxy serves the node on a listener of the test's, announcing the
// address of a fault-injecting proxy in front of it.
func behindProxy(t *testing.T, configure func(*testutil.Proxy)) (func(*streamserver.Config), *testutil.Proxy) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := testutil.StartProxy(t, ln.Addr().String(), configure)
	return func(c *streamserver.Config) { c.Listener, c.Cluster.Advertise = ln, p.Addr }, p
}

func start(t *testing.T, name string, edits ...func(*streamserver.Config)) *testnode.Node {
	t.Helper()
	return testnode.Start(t, name, storeSize, append([]func(*streamserver.Config){defaults}, edits...)...)
}

// client is a plain nats.go connection, as any process of a cluster
// would open, that reconnects through NATS restarts.
func client(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatalf("connect to NATS at %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// request sends payload to subject and decodes the JSON reply into v,
// returning the reply's "error", if any.
func request(t *testing.T, nc *nats.Conn, subject string, payload []byte, v any) string {
	t.Helper()
	m, err := nc.Request(subject, payload, 30*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &e); err != nil {
		t.Fatalf("reply to %s is not JSON: %q", subject, m.Data)
	}
	if e.Error == "" && v != nil {
		if err := json.Unmarshal(m.Data, v); err != nil {
			t.Fatalf("reply to %s: %v", subject, err)
		}
	}
	return e.Error
}

// report is node's replication report, asked through NATS.
func report(t *testing.T, nc *nats.Conn, node string) bridge.Replication {
	t.Helper()
	var r bridge.Replication
	if e := request(t, nc, "plasma.replication."+node, nil, &r); e != "" {
		t.Fatalf("replication report of %s: %s", node, e)
	}
	return r
}

// blobState is the state of blob hash in a report, "" if it is not there.
func blobState(r bridge.Replication, hash string) (bridge.BlobReplication, bool) {
	for _, s := range r.Subjects {
		for _, b := range s.Blobs {
			if b.Hash.String() == hash {
				return b, true
			}
		}
	}
	return bridge.BlobReplication{}, false
}

// waitFor polls cond until it holds, failing after a minute with what.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// natsServer is Debian's nats-server, run as an external NATS with
// JetStream on port.
type natsServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func (s *natsServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

func startNATSServer(t *testing.T) *natsServer {
	t.Helper()
	if _, err := exec.LookPath("nats-server"); err != nil {
		t.Fatalf("these tests need Debian's nats-server as an external NATS: apt-get install -y nats-server (%v)", err)
	}
	s := &natsServer{t: t, port: testutil.FreePort(t, "127.0.0.1"), dir: t.TempDir()}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *natsServer) start() {
	s.t.Helper()
	s.cmd = exec.Command("nats-server", "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", s.dir)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	testutil.WaitTCP(s.t, "127.0.0.1:"+strconv.Itoa(s.port))
}

func (s *natsServer) stop() {
	if s.cmd != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}
