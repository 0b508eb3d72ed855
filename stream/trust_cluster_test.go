package stream_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/stream"
)

// securedCluster is a cluster whose etcd requires client certificates
// from a CA, and whose nodes run mutual TLS with pinned keys; no trust
// file lists a node key: nodes trust each other through their
// registrations.
type securedCluster struct {
	dir     string
	ca      *trust.CA
	etcd    string // https URL of node a's embedded member
	ids     map[string]trust.Identity
	keyFile map[string]string
	trusted string // the trust file every node uses: the clients only
	nodes   map[string]*testutil.Node
	secrets []string // what must never appear in a log
}

func newSecuredCluster(t *testing.T) *securedCluster {
	t.Helper()
	c := &securedCluster{dir: testutil.ShortDir(t), ids: map[string]trust.Identity{}, keyFile: map[string]string{}, nodes: map[string]*testutil.Node{}}
	var err error
	if c.ca, err = trust.NewCA("plasma test etcd ca"); err != nil {
		t.Fatal(err)
	}
	if err := trust.WriteCA(filepath.Join(c.dir, "ca"), c.ca, false); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c", "d", "admin", "reader", "stranger"} {
		id, err := trust.Generate()
		if err != nil {
			t.Fatal(err)
		}
		c.ids[name], c.keyFile[name] = id, filepath.Join(c.dir, name+".key")
		if err := trust.WriteKey(c.keyFile[name], id, false); err != nil {
			t.Fatal(err)
		}
		seed, _ := os.ReadFile(c.keyFile[name])
		c.secrets = append(c.secrets, strings.TrimSpace(string(seed)))
	}
	c.trusted = c.writeTrust(t, "admin", "admin", "reader", "read")
	c.etcd = "https://" + testutil.FreeAddr(t)
	return c
}

// writeTrust writes the clients' trust file (name role pairs), atomically.
func (c *securedCluster) writeTrust(t *testing.T, entries ...string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(entries); i += 2 {
		fmt.Fprintf(&b, "%s %s %s\n", c.ids[entries[i]].Public(), entries[i], entries[i+1])
	}
	p := filepath.Join(c.dir, "trusted")
	if err := os.WriteFile(p+".new", []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	return p
}

// etcdCert issues name's etcd certificate and returns the flags that use it.
func (c *securedCluster) etcdCert(t *testing.T, name string) []string {
	t.Helper()
	certPEM, keyPEM, err := c.ca.Issue(trust.IssueOptions{Name: "etcd-" + name})
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(c.dir, name+"-etcd.crt"), filepath.Join(c.dir, name+"-etcd.key")
	if err := trust.WritePair(cert, key, certPEM, keyPEM, false); err != nil {
		t.Fatal(err)
	}
	c.secrets = append(c.secrets, strings.TrimSpace(strings.Split(string(keyPEM), "\n")[1]))
	return []string{"--etcd-cert", cert, "--etcd-key", key, "--etcd-ca", filepath.Join(c.dir, "ca", trust.CAFile)}
}

// start starts node name; node a serves the embedded etcd member.
func (c *securedCluster) start(t *testing.T, name string) *testutil.Node {
	t.Helper()
	args := append([]string{"-k", c.keyFile[name], "--trusted-keys", c.trusted, "--lease-ttl", "2s", "--group", "g", "--log-level", "info"}, c.etcdCert(t, name)...)
	if name == "a" {
		args = append(args, "--etcd", "embedded", "--etcd-dir", filepath.Join(c.dir, "etcd"), "--etcd-listen", strings.TrimPrefix(c.etcd, "https://"))
	} else {
		args = append(args, "--etcd", c.etcd)
	}
	n := testutil.StartNode(t, name, "64MiB", args...)
	c.nodes[name] = n
	return n
}

// client connects to node with the given client key, pinning the node's key.
func (c *securedCluster) client(t *testing.T, key, node string) *stream.Client {
	t.Helper()
	cl, err := stream.Connect(bg, c.nodes[node].Addr, stream.WithKey(c.ids[key]), stream.WithServerKey(c.ids[node].Public()), stream.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatalf("connect to %s as %s: %v", node, key, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// refused reports whether node refuses a client with key.
func (c *securedCluster) refused(node, key string) bool {
	cl, err := stream.Connect(bg, c.nodes[node].Addr, stream.WithKey(c.ids[key]), stream.WithServerKey(c.ids[node].Public()), stream.WithTimeout(5*time.Second))
	if err != nil {
		return true
	}
	defer cl.Close()
	_, err = cl.Ping(bg)
	return err != nil
}

func wantNotPermitted(t *testing.T, what string, err error) {
	t.Helper()
	var se *stream.Error
	if !errors.As(err, &se) || se.Status != stream.StatusNotPermitted || !strings.Contains(se.Msg, "has role read") {
		t.Fatalf("%s as a read-only key: %v, want NotPermitted naming the role", what, err)
	}
}

// Three nodes with mutual TLS everywhere, etcd included, move, prefetch
// and delete objects; a fourth joins with no file edited on the first
// three; roles hold across nodes; SIGHUP with a key removed cuts it off,
// and with a registered node's key listed as none cuts that node off;
// no secret reaches a log.
func TestSecuredClusterTrustsRegisteredKeys(t *testing.T) {
	c := newSecuredCluster(t)
	for _, n := range []string{"a", "b", "c"} {
		c.start(t, n)
	}
	c.etcdRefusesStrangers(t)

	// Move: a FETCH into c of what a holds runs c → a over mutual TLS,
	// with keys neither trust file lists.
	data := testutil.Pattern(3<<20, 41)
	id, _ := testutil.StoreClient(t, c.nodes["a"].Socket).Put(bg, data, []byte("m"))
	admin := c.client(t, "admin", "c")
	waitHolders(t, admin, id, "[a]")
	if _, err := admin.Fetch(bg, []stream.ObjectID{id}); err != nil {
		t.Fatalf("fetch into c from a: %v", err)
	}
	mustHave(t, c.nodes["c"].Socket, id, data, []byte("m"))

	// Prefetch to the group.
	if out, err := c.client(t, "admin", "a").Prefetch(bg, id, "g", true, 0); err != nil {
		t.Fatalf("prefetch: %v %+v", err, out)
	}
	waitHolders(t, admin, id, "[a b c]")

	// A read-only key can neither TAKE nor delete cluster-wide, and
	// nothing moved or vanished anywhere.
	reader := c.client(t, "reader", "b")
	_, err := reader.Sync(bg, []stream.PeerRequest{{Kind: stream.Take, From: c.nodes["a"].Addr, Objects: []stream.ObjectID{id}}})
	wantNotPermitted(t, "SYNC TAKE", err)
	_, err = reader.DeleteCluster(bg, id)
	wantNotPermitted(t, "DELETE-CLUSTER", err)
	if _, err := reader.Ping(bg); err != nil {
		t.Fatalf("the reader's connection after refusals: %v", err)
	}
	for _, n := range []string{"a", "b", "c"} {
		mustHave(t, c.nodes[n].Socket, id, data, []byte("m"))
	}

	// A key nobody lists or registered is refused at the handshake.
	if !c.refused("a", "stranger") {
		t.Fatal("a stranger's key was served")
	}

	// A fourth node joins: its own key and etcd certificate, the same
	// client trust file; the first three are not touched.
	d := c.start(t, "d")
	id2, _ := testutil.StoreClient(t, d.Socket).Put(bg, testutil.Pattern(2<<20, 42), nil)
	if out, err := c.client(t, "admin", "d").Prefetch(bg, id2, "g", true, 0); err != nil || len(out) != 4 {
		t.Fatalf("prefetch from the new node d: %v %+v", err, out)
	}
	waitHolders(t, admin, id2, "[a b c d]")
	if _, err := c.client(t, "admin", "d").Fetch(bg, []stream.ObjectID{id}); err != nil {
		t.Fatalf("fetch into d: %v", err)
	}

	// Delete cluster-wide, through the new node: every holder deletes on
	// the word of a registered node.
	if out, err := c.client(t, "admin", "d").DeleteCluster(bg, id, id2); err != nil {
		t.Fatalf("delete cluster-wide: %v %+v", err, out)
	}
	for _, n := range c.nodes {
		mustNotHave(t, n.Socket, id)
		mustNotHave(t, n.Socket, id2)
	}

	// A key removed from the trust file and a SIGHUP cut that peer off:
	// its open connection ends, and it cannot connect again.
	reader = c.client(t, "reader", "a")
	if _, err := reader.Ping(bg); err != nil {
		t.Fatal(err)
	}
	c.writeTrust(t, "admin", "admin")
	c.nodes["a"].Stream.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := reader.Ping(bg); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a key removed from the trust file still works after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !c.refused("a", "reader") {
		t.Fatal("a removed key connected again")
	}
	// The nodes' own connections are untouched: a still prefetches.
	id3, _ := testutil.StoreClient(t, c.nodes["a"].Socket).Put(bg, testutil.Pattern(1<<20, 43), nil)
	if out, err := c.client(t, "admin", "a").Prefetch(bg, id3, "g", true, 0); err != nil || len(out) != 4 {
		t.Fatalf("prefetch after the reload: %v %+v", err, out)
	}

	// A registered node is cut off by one line and a SIGHUP: d listed
	// with the role none is refused by a, although it is still
	// registered; b, not reloaded, still serves it.
	c.writeTrust(t, "admin", "admin", "d", "none")
	c.nodes["a"].Stream.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(10 * time.Second); !c.refused("a", "d"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a registered node listed with the role none is still served after SIGHUP")
		}
	}
	waitNodes(t, c.client(t, "admin", "a"), 4)
	if c.refused("b", "d") {
		t.Fatal("b, whose trust file was not reloaded, refuses the registered node d")
	}

	// A node that leaves is no longer trusted: d's key is refused by b
	// once d's registration is gone.
	d.Stream.Process.Signal(syscall.SIGINT)
	waitNodes(t, c.client(t, "admin", "b"), 3)
	if !c.refused("b", "d") {
		t.Fatal("the key of a node that left is still served")
	}

	for name, n := range c.nodes {
		log := n.Log.String()
		if !strings.Contains(log, "trusting the node keys registered in the cluster directory") {
			t.Errorf("node %s does not say it trusts registered keys:\n%s", name, log)
		}
		for _, s := range c.secrets {
			if strings.Contains(log, s) {
				t.Errorf("node %s logged a secret", name)
			}
		}
	}
}

// etcdRefusesStrangers: the embedded member speaks only TLS and only to
// clients with a certificate from the CA.
func (c *securedCluster) etcdRefusesStrangers(t *testing.T) {
	t.Helper()
	host := strings.TrimPrefix(c.etcd, "https://")
	other, _ := trust.NewCA("another ca")
	certPEM, keyPEM, _ := other.Issue(trust.IssueOptions{Name: "intruder"})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]clientv3.Config{
		"plain http":          {Endpoints: []string{"http://" + host}},
		"no certificate":      {Endpoints: []string{c.etcd}, TLS: &tls.Config{RootCAs: c.ca.Pool()}},
		"another CA's client": {Endpoints: []string{c.etcd}, TLS: &tls.Config{RootCAs: c.ca.Pool(), Certificates: []tls.Certificate{pair}}},
	} {
		cfg.DialTimeout, cfg.Logger = 2*time.Second, zap.NewNop()
		cli, err := clientv3.New(cfg)
		if err == nil {
			ctx, cancel := context.WithTimeout(bg, 2*time.Second)
			_, err = cli.Get(ctx, "/plasma/", clientv3.WithPrefix())
			cancel()
			cli.Close()
		}
		if err == nil {
			t.Errorf("etcd served a client with %s", name)
		}
	}
}

func waitNodes(t *testing.T, cl *stream.Client, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ns, err := cl.Nodes(bg)
		if err == nil && len(ns) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes: %d (%v), want %d", len(ns), err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
