package streamserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/testnode"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/stream"
)

// keyring is a directory of key files and the identities in them.
type keyring struct {
	dir  string
	ids  map[string]trust.Identity
	file map[string]string
}

func newKeyring(t *testing.T, names ...string) *keyring {
	t.Helper()
	k := &keyring{dir: t.TempDir(), ids: map[string]trust.Identity{}, file: map[string]string{}}
	for _, n := range names {
		id, err := trust.Generate()
		if err != nil {
			t.Fatal(err)
		}
		k.ids[n] = id
		k.file[n] = filepath.Join(k.dir, n+".key")
		if err := trust.WriteKey(k.file[n], id, false); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// trustFile writes a trust file of "name role" pairs and returns its path.
func (k *keyring) trustFile(t *testing.T, file string, entries ...string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(entries); i += 2 {
		fmt.Fprintf(&b, "%s %s %s\n", k.ids[entries[i]].Public(), entries[i], entries[i+1])
	}
	p := filepath.Join(k.dir, file)
	if err := os.WriteFile(p+".new", []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	return p
}

// startKeyed starts an in-process node with key name and the trust file.
func (k *keyring) startKeyed(t *testing.T, name, trustFile string) *testnode.Node {
	return testnode.Start(t, name, 64<<20, func(c *streamserver.Config) {
		c.PrivateKey, c.TrustedKeys = k.file[name], trustFile
	})
}

// as connects to node n with key client, pinning n's key.
func (k *keyring) as(client, server string) []stream.Option {
	return []stream.Option{stream.WithKey(k.ids[client]), stream.WithServerKey(k.ids[server].Public()), stream.WithTimeout(5 * time.Second)}
}

func putObjects(t *testing.T, sock string, n int, seed byte) []stream.ObjectID {
	t.Helper()
	sc := testutil.StoreClient(t, sock)
	var ids []stream.ObjectID
	for i := range n {
		id, err := sc.Put(context.Background(), testutil.Pattern(100<<10, seed+byte(i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func mustHave(t *testing.T, sock string, ids []stream.ObjectID, want bool) {
	t.Helper()
	sc := testutil.StoreClient(t, sock)
	for _, id := range ids {
		if ok, err := sc.Contains(context.Background(), id); err != nil || ok != want {
			t.Fatalf("store %s holds %s: %v (%v), want %v", sock, id, ok, err, want)
		}
	}
}

func wantStatus(t *testing.T, err error, st stream.Status, msg string) {
	t.Helper()
	var se *stream.Error
	if !errors.As(err, &se) || se.Status != st || !strings.Contains(se.Msg, msg) {
		t.Fatalf("got %v, want status %s with %q", err, st, msg)
	}
}

// A peer without a certificate, with an unknown key, or a man in the
// middle with its own key is refused at the TLS handshake: the server
// reads no request and says nothing about itself.
func TestTLSRefusesUnauthenticatedUnknownAndMITM(t *testing.T) {
	k := newKeyring(t, "a", "reader", "stranger", "mitm")
	a := k.startKeyed(t, "a", k.trustFile(t, "a.trust", "reader", "read"))
	ctx := context.Background()

	if c, err := stream.Connect(ctx, a.Addr, k.as("reader", "a")...); err != nil {
		t.Fatalf("trusted key refused: %v", err)
	} else {
		c.Close()
	}
	if _, err := stream.Connect(ctx, a.Addr, stream.WithTimeout(3*time.Second)); err == nil {
		t.Fatal("a client without a key was served")
	}
	if _, err := stream.Connect(ctx, a.Addr, k.as("stranger", "a")...); err == nil {
		t.Fatal("a client with an unknown key was served")
	}

	// A plain HELLO learns nothing: no reply names the node.
	raw, err := net.Dial("tcp", a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	h := streamwire.Hello{Version: streamwire.Version, Role: streamwire.RoleClient, Name: "plain"}
	copy(h.Magic[:], streamwire.Magic)
	raw.Write(streamwire.AppendFrame(nil, streamwire.TypeHello, h.Append(nil)))
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(raw)
	raw.Close()
	if len(got) > 16 || strings.Contains(string(got), streamwire.Magic) { // at most a TLS alert
		t.Fatalf("a plain client was answered %q", got)
	}

	// The man in the middle terminates TLS with its own key and forwards.
	mitmCfg, err := trust.TLSConfig(k.ids["mitm"], func(pk trust.PublicKey) (trust.Entry, bool) { return trust.Entry{Key: pk}, true })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", mitmCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var relayed atomic.Int64
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer down.Close()
				up, err := tls.Dial("tcp", a.Addr, mitmCfg)
				if err != nil {
					io.Copy(io.Discard, down) // the client's handshake ends it
					return
				}
				defer up.Close()
				go io.Copy(down, up)
				n, _ := io.Copy(up, down)
				relayed.Add(n)
			}()
		}
	}()
	_, err = stream.Connect(ctx, ln.Addr().String(), k.as("reader", "a")...)
	if err == nil || !strings.Contains(err.Error(), "does not prove a trusted key") {
		t.Fatalf("through a man in the middle: %v, want a refused handshake", err)
	}
	if n := relayed.Load(); n != 0 {
		t.Fatalf("the client sent %d bytes through the man in the middle", n)
	}
}

// Each request is checked against its key's role before anything moves:
// a read key's TAKE, DELETE, DELETE-CLUSTER and SYNC are refused with
// NotPermitted, the objects stay, the connection stays usable; an admin
// key may TAKE.
func TestTLSRoles(t *testing.T) {
	k := newKeyring(t, "a", "b", "reader", "admin")
	a := k.startKeyed(t, "a", k.trustFile(t, "a.trust", "reader", "read", "admin", "admin"))
	ids := putObjects(t, a.Socket, 2, 0)
	ctx := context.Background()

	c, err := stream.Connect(ctx, a.Addr, k.as("reader", "a")...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.DeleteLocal(ctx, ids)
	wantStatus(t, err, stream.StatusNotPermitted, "not permitted: key reader has role read; DELETE")
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("the connection is not usable after a refusal: %v", err)
	}
	_, err = c.DeleteCluster(ctx, ids...)
	wantStatus(t, err, stream.StatusNotPermitted, "needs admin")
	_, err = c.Sync(ctx, []stream.PeerRequest{{Kind: stream.Copy, From: a.Addr, Objects: ids}})
	wantStatus(t, err, stream.StatusNotPermitted, "SYNC needs write")
	if _, err := c.List(ctx); err != nil {
		t.Fatalf("LIST with a read key: %v", err)
	}

	dst := testnode.Start(t, "dst", 64<<20)
	dstStore := testutil.StoreClient(t, dst.Socket)
	_, err = stream.TakeFrom(ctx, a.Addr, dstStore, ids, k.as("reader", "a")...)
	wantStatus(t, err, stream.StatusNotPermitted, "TAKE needs admin")
	mustHave(t, a.Socket, ids, true)
	mustHave(t, dst.Socket, ids, false)

	if _, err := stream.CopyFrom(ctx, a.Addr, dstStore, ids[:1], k.as("reader", "a")...); err != nil {
		t.Fatalf("COPY with a read key: %v", err)
	}
	if _, err := stream.TakeFrom(ctx, a.Addr, dstStore, ids[1:], k.as("admin", "a")...); err != nil {
		t.Fatalf("TAKE with an admin key: %v", err)
	}
	mustHave(t, a.Socket, ids[1:], false)
	mustHave(t, dst.Socket, ids, true)
}

// A write key asks node b to SYNC from node a: b dials a with its own
// key over TLS. Peers that do not prove a trusted key, or do not speak
// TLS, fail with PeerUnreachable and a reply that echoes nothing of
// theirs and does not say which of the two they were
// (TestSyncIsNotAPortScanner has more such peers).
func TestTLSSyncBetweenNodes(t *testing.T) {
	k := newKeyring(t, "a", "b", "c", "writer")
	a := k.startKeyed(t, "a", k.trustFile(t, "a.trust", "b", "read"))
	b := k.startKeyed(t, "b", k.trustFile(t, "b.trust", "writer", "write", "a", "read"))
	c := k.startKeyed(t, "c", k.trustFile(t, "c.trust", "b", "admin")) // b does not trust c
	plain := testnode.Start(t, "plainnode", 64<<20)
	ids := putObjects(t, a.Socket, 2, 0)
	ctx := context.Background()

	cl, err := stream.Connect(ctx, b.Addr, k.as("writer", "b")...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	res, err := cl.Sync(ctx, []stream.PeerRequest{{Kind: stream.Copy, From: a.Addr, Objects: ids}})
	if err != nil {
		t.Fatalf("SYNC from a trusted node: %v", err)
	}
	mustHave(t, b.Socket, ids, true)
	_ = res

	for i, peer := range []struct{ addr, sock, name, why string }{
		{c.Addr, c.Socket, "c", "not a reachable plasma node whose key this node trusts"},
		{plain.Addr, plain.Socket, "plainnode", "not a reachable plasma node whose key this node trusts"},
	} {
		theirs := putObjects(t, peer.sock, 1, byte(10+i))
		res, err := cl.Sync(ctx, []stream.PeerRequest{{Kind: stream.Copy, From: peer.addr, Objects: theirs}})
		if err == nil {
			t.Fatalf("SYNC from %s succeeded: %+v", peer.name, res)
		}
		if len(res.Peers) != 1 {
			t.Fatalf("SYNC from %s: %v", peer.name, err)
		}
		pr := res.Peers[0]
		if pr.Status != stream.StatusPeerUnreachable || !strings.Contains(pr.Message, peer.why) || strings.Contains(pr.Message, peer.name+" ") ||
			strings.Contains(pr.Message, "Plasma") || strings.Contains(pr.Message, "closing") {
			t.Fatalf("SYNC from %s: %s %q, want PeerUnreachable saying %q and nothing of the peer's", peer.name, pr.Status, pr.Message, peer.why)
		}
		t.Logf("SYNC from %s: %s", peer.name, pr.Message)
		mustHave(t, b.Socket, theirs, false)
	}
}

// ReloadTrust (SIGHUP) applies a new trust file without dropping the
// connections of keys it keeps; a removed key's connections are closed
// and its new ones refused.
func TestTLSReloadRemovesKey(t *testing.T) {
	k := newKeyring(t, "a", "gone", "stays")
	tf := k.trustFile(t, "a.trust", "gone", "read", "stays", "read")
	a := k.startKeyed(t, "a", tf)
	ctx := context.Background()
	gone, err := stream.Connect(ctx, a.Addr, k.as("gone", "a")...)
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	stays, err := stream.Connect(ctx, a.Addr, k.as("stays", "a")...)
	if err != nil {
		t.Fatal(err)
	}
	defer stays.Close()

	k.trustFile(t, "a.trust", "stays", "read")
	if err := a.Server.ReloadTrust(); err != nil {
		t.Fatal(err)
	}
	if _, err := stays.Ping(ctx); err != nil {
		t.Fatalf("a kept key's connection was dropped by the reload: %v", err)
	}
	if _, err := gone.Ping(ctx); err == nil {
		t.Fatal("a removed key's connection still serves")
	}
	if _, err := stream.Connect(ctx, a.Addr, k.as("gone", "a")...); err == nil {
		t.Fatal("a removed key connected after the reload")
	}
}

// The same with the real binary and SIGHUP; a trust file that does not
// parse keeps the keys in use.
func TestTLSSighupReloadsTrustFile(t *testing.T) {
	k := newKeyring(t, "a", "gone", "stays")
	tf := k.trustFile(t, "a.trust", "gone", "read", "stays", "read")
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	port := testutil.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := testutil.StartProcess(t, "plasma-stream-server", "-s", sock, "-p", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--node-name", "a", "-k", k.file["a"], "--trusted-keys", tf)
	ctx := context.Background()
	var stays *stream.Client
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if stays, err = stream.Connect(ctx, addr, k.as("stays", "a")...); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("keyed server not serving: %v", err)
		}
	}
	defer stays.Close()

	k.trustFile(t, "a.trust", "stays", "read")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := stream.Connect(ctx, addr, k.as("gone", "a")...)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the removed key still connects 20s after SIGHUP")
		}
	}
	if _, err := stays.Ping(ctx); err != nil {
		t.Fatalf("SIGHUP dropped a kept key's connection: %v", err)
	}
}

// A large object crosses a TLS connection written straight from the
// sender's arena mapping (no sendfile on TLS), in several steps and with
// a ragged end, and lands whole and verified.
func TestTLSSyncLargeObject(t *testing.T) {
	k := newKeyring(t, "a", "b", "writer")
	a := k.startKeyed(t, "a", k.trustFile(t, "a.trust", "b", "read"))
	b := k.startKeyed(t, "b", k.trustFile(t, "b.trust", "writer", "write", "a", "read"))
	ctx := context.Background()
	data := testutil.Pattern(9<<20+12345, 7)
	id, err := testutil.StoreClient(t, a.Socket).Put(ctx, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := stream.Connect(ctx, b.Addr, k.as("writer", "b")...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Sync(ctx, []stream.PeerRequest{{Kind: stream.Copy, From: a.Addr, Objects: []stream.ObjectID{id}}}); err != nil {
		t.Fatalf("SYNC of a %d-byte object over TLS: %v", len(data), err)
	}
	dst := testutil.StoreClient(t, b.Socket)
	o, err := dst.GetOne(ctx, id, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(o.Data, data) {
		t.Fatalf("the object copied over TLS differs from the original")
	}
	dst.Release(ctx, id)
}

// A byte flipped in flight between two nodes with keys is caught by TLS
// first: the record fails its authentication tag, the connection ends,
// and BLAKE3 never sees a corrupt byte (no integrity failure, no corrupt
// group); what lands in the store is whole or absent, never the flipped
// bytes.
func TestTLSFlippedByteCaughtByTLS(t *testing.T) {
	k := newKeyring(t, "a", "b", "writer")
	a := k.startKeyed(t, "a", k.trustFile(t, "a.trust", "b", "read"))
	var logs testutil.Buffer
	b := testnode.Start(t, "b", 64<<20, func(c *streamserver.Config) {
		c.PrivateKey, c.TrustedKeys = k.file["b"], k.trustFile(t, "b.trust", "writer", "write", "a", "read")
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := context.Background()
	data := testutil.Pattern(6<<20, 8)
	id, err := testutil.StoreClient(t, a.Socket).Put(ctx, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every connection through the proxy has a byte flipped 3 MiB in, so
	// no attempt, first or resumed, can bring the whole object.
	proxy := testutil.StartProxy(t, a.Addr, func(p *testutil.Proxy) { p.FlipAt = 3 << 20 })
	cl, err := stream.Connect(ctx, b.Addr, k.as("writer", "b")...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	res, err := cl.Sync(ctx, []stream.PeerRequest{{Kind: stream.Copy, From: proxy.Addr, Objects: []stream.ObjectID{id}}})
	if err == nil {
		t.Fatalf("SYNC through a proxy flipping a byte succeeded: %+v", res)
	}
	said := err.Error()
	if len(res.Peers) == 1 {
		said += " | " + res.Peers[0].Message
	}
	t.Logf("SYNC through the flipping proxy: %s", said)
	if !strings.Contains(said+logs.String(), "bad record MAC") {
		t.Fatalf("the flipped byte was not caught by TLS (no bad record MAC): %s\n%s", said, logs.String())
	}
	st := b.Server.Stats()
	if n, g := st.IntegrityFailures.Load(), st.CorruptGroups.Load(); n != 0 || g != 0 {
		t.Fatalf("a corrupt byte got past TLS: %d integrity failures, %d corrupt groups", n, g)
	}
	sc := testutil.StoreClient(t, b.Socket)
	if ok, err := sc.Contains(ctx, id); err != nil || ok {
		t.Fatalf("b holds the object after failed transfers: %v %v", ok, err)
	}

	// Without the flips, the same SYNC brings the object whole.
	if _, err := cl.Sync(ctx, []stream.PeerRequest{{Kind: stream.Copy, From: a.Addr, Objects: []stream.ObjectID{id}}}); err != nil {
		t.Fatalf("SYNC without the proxy: %v", err)
	}
	o, err := sc.GetOne(ctx, id, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Release(ctx, id)
	if !bytes.Equal(o.Data, data) {
		t.Fatal("the object differs from the original")
	}
}
