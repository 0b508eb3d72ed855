package streamserver_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/testnode"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/stream"
)

// pki is a CA and the certificates it issued, as files in a directory.
type pki struct {
	dir string
	ca  *trust.CA
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	ca, err := trust.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{dir: t.TempDir(), ca: ca}
	if err := os.WriteFile(p.caFile(), ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pki) caFile() string { return filepath.Join(p.dir, "ca.crt") }

// issue writes name.crt and name.key and returns them as CA files of
// this CA.
func (p *pki) issue(t *testing.T, name string, role trust.Role) trust.CAFiles {
	t.Helper()
	cert, key, err := p.ca.Issue(trust.IssueOptions{Name: name, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	f := trust.CAFiles{Cert: filepath.Join(p.dir, name+".crt"), Key: filepath.Join(p.dir, name+".key"), CA: p.caFile()}
	if err := trust.WritePair(f.Cert, f.Key, cert, key, true); err != nil {
		t.Fatal(err)
	}
	return f
}

// startCA starts an in-process node in CA mode with the files.
func startCA(t *testing.T, name string, f trust.CAFiles, defaultRole trust.Role) *testnode.Node {
	return testnode.Start(t, name, 64<<20, func(c *streamserver.Config) {
		c.TLS, c.TLSDefaultRole = f, defaultRole
	})
}

func caOpts(f trust.CAFiles) []stream.Option {
	return []stream.Option{stream.WithTLSFiles(f.Cert, f.Key, f.CA), stream.WithTimeout(5 * time.Second)}
}

// In CA mode a client with a certificate of another CA, with none, or
// with one that carries no role (default role none) is refused at the
// handshake; one with a role is served; a server whose certificate
// another CA issued is refused by the client.
func TestTLSCARefusesOtherCANoCertNoRole(t *testing.T) {
	p, other := newPKI(t, "site-ca"), newPKI(t, "other-ca")
	a := startCA(t, "a", p.issue(t, "a", trust.RoleWrite), trust.RoleNone)
	ctx := context.Background()

	c, err := stream.Connect(ctx, a.Addr, caOpts(p.issue(t, "reader", trust.RoleRead))...)
	if err != nil {
		t.Fatalf("a CA-issued certificate with role read was refused: %v", err)
	}
	if _, err := c.List(ctx); err != nil {
		t.Fatalf("LIST with role read: %v", err)
	}
	c.Close()

	foreign := other.issue(t, "intruder", trust.RoleAdmin)
	foreign.CA = p.caFile() // it trusts the server, the server does not trust it
	noRole := p.issue(t, "norole", trust.RoleNone)
	for _, tc := range []struct {
		name string
		opts []stream.Option
	}{
		{"a certificate of another CA", caOpts(foreign)},
		{"no certificate", []stream.Option{stream.WithTimeout(3 * time.Second)}},
		{"a certificate without a role", caOpts(noRole)},
	} {
		c, err := stream.Connect(ctx, a.Addr, tc.opts...)
		if err == nil {
			c.Close()
			t.Fatalf("a client with %s was served", tc.name)
		}
		if strings.Contains(err.Error(), "a:") || strings.Contains(err.Error(), "Plasma") {
			t.Fatalf("a client with %s learnt of the server: %v", tc.name, err)
		}
		t.Logf("%s: %v", tc.name, err)
	}

	// The client checks the server's chain too.
	mine := other.issue(t, "me", trust.RoleAdmin)
	if c, err := stream.Connect(ctx, a.Addr, caOpts(mine)...); err == nil {
		c.Close()
		t.Fatal("a client accepted a server whose certificate its CA did not issue")
	}

	// --tls-default-role read serves a certificate without a role, as read.
	b := startCA(t, "b", p.issue(t, "b", trust.RoleWrite), trust.RoleRead)
	c, err = stream.Connect(ctx, b.Addr, caOpts(noRole)...)
	if err != nil {
		t.Fatalf("default role read: %v", err)
	}
	defer c.Close()
	_, err = c.Sync(ctx, []stream.PeerRequest{{Kind: stream.Copy, From: a.Addr, Objects: putObjects(t, a.Socket, 1, 50)}})
	wantStatus(t, err, stream.StatusNotPermitted, "not permitted: key norole has role read; SYNC needs write")
}

// Roles come from the certificate: read's TAKE is refused before
// anything moves, write can SYNC between two CA-mode nodes (the node
// dials its peer with its own certificate), admin can TAKE.
func TestTLSCARolesAndSync(t *testing.T) {
	p := newPKI(t, "site-ca")
	a := startCA(t, "a", p.issue(t, "a", trust.RoleWrite), trust.RoleNone)
	b := startCA(t, "b", p.issue(t, "b", trust.RoleWrite), trust.RoleNone)
	ids := putObjects(t, a.Socket, 2, 0)
	ctx := context.Background()

	dst := testnode.Start(t, "dst", 64<<20)
	dstStore := testutil.StoreClient(t, dst.Socket)
	_, err := stream.TakeFrom(ctx, a.Addr, dstStore, ids, caOpts(p.issue(t, "reader", trust.RoleRead))...)
	wantStatus(t, err, stream.StatusNotPermitted, "not permitted: key reader has role read; TAKE needs admin")
	mustHave(t, a.Socket, ids, true)

	w, err := stream.Connect(ctx, b.Addr, caOpts(p.issue(t, "writer", trust.RoleWrite))...)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Sync(ctx, []stream.PeerRequest{{Kind: stream.Copy, From: a.Addr, Objects: ids}}); err != nil {
		t.Fatalf("SYNC between CA-mode nodes: %v", err)
	}
	mustHave(t, b.Socket, ids, true)
	// b's certificate has role write at a: a TAKE it makes for a client
	// is refused there.
	more := putObjects(t, a.Socket, 1, 60)
	res, err := w.Sync(ctx, []stream.PeerRequest{{Kind: stream.Take, From: a.Addr, Objects: more}})
	if len(res.Peers) != 1 || res.Peers[0].Status != stream.StatusNotPermitted || !strings.Contains(res.Peers[0].Message, "key b has role write; TAKE needs admin") {
		t.Fatalf("SYNC TAKE through a write-role node: %+v, %v; want NotPermitted from a", res, err)
	}
	mustHave(t, a.Socket, more, true)

	if _, err := stream.TakeFrom(ctx, a.Addr, dstStore, ids, caOpts(p.issue(t, "admin", trust.RoleAdmin))...); err != nil {
		t.Fatalf("TAKE with role admin: %v", err)
	}
	mustHave(t, a.Socket, ids, false)
	mustHave(t, dst.Socket, ids, true)
}

// Certificate rotation with the real binary: SIGHUP re-reads the three
// files; a file that fails keeps the configuration in use; after a move
// to a new CA, connections whose certificates the new CA does not verify
// are closed, and clients of the new CA are served.
func TestTLSCASighupRotation(t *testing.T) {
	old, next := newPKI(t, "old-ca"), newPKI(t, "new-ca")
	srv := old.issue(t, "a", trust.RoleWrite)
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	port := testutil.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := testutil.StartProcess(t, "plasma-stream-server", "-s", sock, "-p", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--node-name", "a", "--tls-cert", srv.Cert, "--tls-key", srv.Key, "--tls-ca", srv.CA)
	ctx := context.Background()
	oldClient := old.issue(t, "oldclient", trust.RoleRead)
	var held *stream.Client
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if held, err = stream.Connect(ctx, addr, caOpts(oldClient)...); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("CA-mode server not serving: %v", err)
		}
	}
	defer held.Close()

	// A key file others may read is refused: the old configuration stays.
	if err := os.Chmod(srv.Key, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	if err := os.Chmod(srv.Key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := held.Ping(ctx); err != nil {
		t.Fatalf("a failed reload dropped a connection: %v", err)
	}

	// Rotate: the server's certificate from the new CA, the CA file too.
	rotated := next.issue(t, "a", trust.RoleWrite)
	for _, m := range [][2]string{{rotated.Cert, srv.Cert}, {rotated.Key, srv.Key}, {rotated.CA, srv.CA}} {
		b, err := os.ReadFile(m[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(m[1]+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(m[1]+".new", m[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	newClient := next.issue(t, "newclient", trust.RoleRead)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := stream.Connect(ctx, addr, caOpts(newClient)...)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a client of the new CA is refused 20s after SIGHUP: %v", err)
		}
	}
	if _, err := held.Ping(ctx); err == nil {
		t.Fatal("a connection whose certificate the new CA does not verify still serves")
	}
	if c, err := stream.Connect(ctx, addr, caOpts(oldClient)...); err == nil {
		c.Close()
		t.Fatal("a client of the old CA connected after the rotation")
	}
}

// The server refuses to mix CA mode with pinned keys, and wants the
// three CA-mode files together.
func TestTLSCAConfigErrors(t *testing.T) {
	f := trust.CAFiles{Cert: "c", Key: "k", CA: "ca"}
	for _, tc := range []struct {
		name string
		edit func(*streamserver.Config)
		want string
	}{
		{"mixed", func(c *streamserver.Config) { c.TLS, c.PrivateKey, c.TrustedKeys = f, "k", "t" }, "exclude each other"},
		{"no ca", func(c *streamserver.Config) { c.TLS = trust.CAFiles{Cert: "c", Key: "k"} }, "--tls-cert, --tls-key and --tls-ca go together"},
	} {
		c := streamserver.Config{}
		tc.edit(&c)
		c.SetDefaults()
		testutil.WantError(t, c.Validate(), tc.want)
	}
	out, err := testutil.RunBinary(t, "plasma-stream-server", "--tls-cert", "c", "--tls-key", "k", "--tls-ca", "ca", "-k", "x", "--trusted-keys", "y")
	if err == nil || !strings.Contains(out, "exclude each other") {
		t.Fatalf("mixed flags: %v %s", err, out)
	}
}

// A connection refused as busy (--max-connections) gets its Error inside
// TLS, so TLS clients (the Go client, plasma-stream-cli) report "busy"
// rather than a peer that does not speak TLS.
func TestTLSBusyRefusalInsideTLS(t *testing.T) {
	p := newPKI(t, "site-ca")
	srv := p.issue(t, "a", trust.RoleWrite)
	cl := p.issue(t, "client", trust.RoleRead)
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	port := testutil.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	testutil.StartProcess(t, "plasma-stream-server", "-s", sock, "-p", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--node-name", "a", "--tls-cert", srv.Cert, "--tls-key", srv.Key, "--tls-ca", srv.CA, "--max-connections", "1")
	ctx := context.Background()
	var held *stream.Client
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if held, err = stream.Connect(ctx, addr, caOpts(cl)...); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("CA-mode server not serving: %v", err)
		}
	}
	defer held.Close()

	_, err := stream.Connect(ctx, addr, caOpts(cl)...)
	wantStatus(t, err, stream.StatusServerBusy, "server busy: a already serves its maximum of 1 connections")

	cli := exec.Command(filepath.Join(testutil.Binaries(t), "plasma-stream-cli"), "-a", addr, "--tls-cert", cl.Cert, "--tls-key", cl.Key, "--tls-ca", cl.CA)
	cli.Stdin = strings.NewReader("PING\n")
	out, err := cli.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "server busy") {
		t.Fatalf("plasma-stream-cli against a busy server: %v\n%s", err, out)
	}
	if _, err := held.Ping(ctx); err != nil {
		t.Fatalf("the served connection: %v", err)
	}
}
