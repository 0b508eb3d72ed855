package streamserver_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/testnode"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/internal/wire"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

var bg = context.Background()

func client(t *testing.T, addr string) *stream.Client {
	t.Helper()
	c, err := stream.Connect(bg, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// PING, STAT and LIST against an in-process server.
func TestRequests(t *testing.T) {
	n := testnode.Start(t, "a", 8<<20)
	id := store.RandomObjectID()
	if err := testutil.StoreClient(t, n.Socket).PutID(bg, id, testutil.Pattern(100<<10, 1), []byte("m")); err != nil {
		t.Fatal(err)
	}
	c := client(t, n.Addr)
	for _, tt := range []struct {
		name  string
		check func() error
	}{
		{"PING", func() error {
			_, st, err := c.PingStore(bg)
			if err == nil && !st.Up {
				err = errors.New("store reported down")
			}
			return err
		}},
		{"STAT", func() error {
			st, err := c.Stat(bg)
			if err == nil && (st.Node != "a" || !st.StoreState.Up || st.Store.Objects != 1) {
				err = errors.New("unexpected reply")
			}
			return err
		}},
		{"LIST", func() error {
			infos, err := c.List(bg)
			if err == nil && (len(infos) != 1 || infos[0].ID != id) {
				err = errors.New("unexpected reply")
			}
			return err
		}},
	} {
		if err := tt.check(); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// Bytes that are not a Plasma Stream HELLO are refused with their status,
// and the server goes on serving.
func TestMalformedFirstFrame(t *testing.T) {
	n := testnode.Start(t, "a", 1<<20)
	hello := func(magic string, version uint16) []byte {
		h := streamwire.Hello{Version: version, Role: streamwire.RoleClient, Name: "test"}
		copy(h.Magic[:], magic)
		return streamwire.AppendFrame(nil, streamwire.TypeHello, h.Append(nil))
	}
	ping := streamwire.AppendFrame(nil, streamwire.TypePing, nil)
	badVersion := hello(streamwire.Magic, streamwire.Version+1)
	for _, tt := range []struct {
		name  string
		bytes []byte
		want  streamwire.Status
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), streamwire.StatusMalformed},
		{"wrong magic", hello("XXXX", streamwire.Version), streamwire.StatusMalformed},
		{"not HELLO first", ping, streamwire.StatusMalformed},
		{"other version", badVersion, streamwire.StatusVersionMismatch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if st := firstReply(t, n.Addr, tt.bytes); st != tt.want {
				t.Fatalf("status %d, want %d", st, tt.want)
			}
		})
	}
	if _, err := client(t, n.Addr).Ping(bg); err != nil {
		t.Fatalf("PING after the malformed connections: %v", err)
	}
}

// firstReply sends b on a new connection and returns the status of the
// Error frame that answers it.
func firstReply(t *testing.T, addr string, b []byte) streamwire.Status {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	hdr, p, _, err := wire.ReadFrame(nc, nil, 1<<16)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	if streamwire.Type(hdr.Type) != streamwire.TypeError|streamwire.ReplyBit && streamwire.Type(hdr.Type) != streamwire.TypeError {
		t.Fatalf("reply of type %#x, want an Error", hdr.Type)
	}
	return streamwire.Status(binary.LittleEndian.Uint16(p))
}

// Limits: a connection beyond MaxConnections is told the server is busy;
// a SYNC beyond the request memory is refused with status 28.
func TestLimits(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*streamserver.Config)
		run  func(t *testing.T, n *testnode.Node) error
		want streamwire.Status
	}{
		{"max connections", func(c *streamserver.Config) { c.MaxConnections = 1 }, func(t *testing.T, n *testnode.Node) error {
			client(t, n.Addr)
			_, err := stream.Connect(bg, n.Addr)
			return err
		}, streamwire.StatusServerBusy},
		{"request memory", func(c *streamserver.Config) { c.RequestMemory = 64 << 10 }, func(t *testing.T, n *testnode.Node) error {
			ids := make([]stream.ObjectID, 20000)
			for i := range ids {
				ids[i] = store.RandomObjectID()
			}
			_, err := client(t, n.Addr).Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: "127.0.0.1:1", Objects: ids}})
			return err
		}, streamwire.StatusRequestTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := testnode.Start(t, "a", 1<<20, tt.edit)
			if err := tt.run(t, n); !stream.IsStatus(err, stream.Status(tt.want)) {
				t.Fatalf("error %v, want status %d", err, tt.want)
			}
		})
	}
}

// COPY between two in-process servers: a SYNC on a copies from b.
func TestCopyBetweenServers(t *testing.T) {
	a, b := testnode.Start(t, "a", 16<<20), testnode.Start(t, "b", 16<<20)
	id, data := store.RandomObjectID(), testutil.Pattern(3<<20+5, 9)
	if err := testutil.StoreClient(t, b.Socket).PutID(bg, id, data, []byte("meta")); err != nil {
		t.Fatal(err)
	}
	r, err := client(t, a.Addr).Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: b.Addr, Objects: []stream.ObjectID{id}}})
	if err != nil || r.Status != stream.StatusOK {
		t.Fatalf("SYNC COPY: %+v, %v", r, err)
	}
	sa := testutil.StoreClient(t, a.Socket)
	objs, err := sa.Get(bg, []store.ObjectID{id}, 0)
	if err != nil || objs[0] == nil || string(objs[0].Data) != string(data) || string(objs[0].Metadata) != "meta" {
		t.Fatalf("the copy on a differs (err %v)", err)
	}
	sa.Release(bg, id)
}

// With its store stopped the server answers requests that need the store
// with status 27 StoreUnavailable, naming the store.
func TestStoreDown(t *testing.T) {
	n := testnode.Start(t, "a", 1<<20)
	c := client(t, n.Addr)
	n.Store.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := c.Ping(bg)
		if stream.IsStatus(err, stream.StatusStoreUnavailable) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PING with the store stopped: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err := c.List(bg)
	if !stream.IsStatus(err, stream.StatusStoreUnavailable) || !strings.Contains(err.Error(), n.Socket) {
		t.Fatalf("LIST with the store stopped: %v", err)
	}
}

// LIST forwards the store's List pages as they are: over a page's worth
// of objects (sealed ones with a digest, and one still being written
// without), the stream server's pages are the store's, byte for byte.
func TestListForwardsStorePages(t *testing.T) {
	n := testnode.Start(t, "a", 16<<20)
	st := testutil.StoreClient(t, n.Socket)
	const count = storewire.MaxInfosPerPage + 1 // two pages
	var g errgroup.Group
	g.SetLimit(8)
	for i := range count {
		g.Go(func() error {
			var id store.ObjectID
			binary.LittleEndian.PutUint32(id[:], uint32(i))
			// With its digest: the store's background hasher does not
			// change the table between the two listings.
			return st.CreateAndSealDigest(bg, id, []byte{byte(i)}, nil, bao.Sum([]byte{byte(i)}))
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(bg, store.RandomObjectID(), 10, []byte("m")); err != nil { // unsealed
		t.Fatal(err)
	}
	var want [][]byte
	if err := st.ListPages(bg, func(p []byte) error { want = append(want, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(want) != 2 {
		t.Fatalf("the store sent %d pages, want 2", len(want))
	}
	c, _, err := transfer.Dial(bg, n.Addr, streamwire.RoleClient, "test", 10*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(streamwire.TypeList, nil); err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		typ, p, err := c.ReadFrame(streamwire.MaxControlFrame)
		if err != nil || typ != streamwire.TypeList|streamwire.ReplyBit {
			t.Fatalf("page %d: %s %v", i, typ, err)
		}
		if !bytes.Equal(p, w) {
			t.Fatalf("page %d: %d bytes differ from the store's %d", i, len(p), len(w))
		}
	}
	infos, err := client(t, n.Addr).List(bg)
	if err != nil || len(infos) != count+1 {
		t.Fatalf("LIST: %d objects, %v; want %d", len(infos), err, count+1)
	}
}

// The stream server refuses a store socket owned by another user, naming
// it, unless started with --socket-owner. Needs root
// (testutil.ForeignOwner).
func TestSocketOwner(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	testutil.ForeignOwner(t, sock)
	cfg := streamserver.Config{PlasmaSocket: sock, Bind: "127.0.0.1"}
	_, err := streamserver.New(bg, cfg)
	if !errors.Is(err, store.ErrSocketOwner) || !strings.Contains(err.Error(), "--socket-owner") {
		t.Fatalf("stream server on a socket of uid 65534: %v", err)
	}
	cfg.SocketOwner = "65534"
	srv, err := streamserver.New(bg, cfg)
	if err != nil {
		t.Fatalf("stream server trusting uid 65534: %v", err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	if _, err := client(t, srv.Addr().String()).Ping(bg); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
