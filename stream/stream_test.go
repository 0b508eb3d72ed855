package stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

var bg = context.Background()

func streamClient(t testing.TB, addr string) *stream.Client {
	t.Helper()
	c, err := stream.Connect(bg, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// putID stores data under id with metadata in the node's store.
func putID(t testing.TB, sock string, id stream.ObjectID, data, meta []byte) {
	t.Helper()
	if err := testutil.StoreClient(t, sock).PutID(bg, id, data, meta); err != nil {
		t.Fatal(err)
	}
}

// mustHave checks that the store holds exactly data and meta under id,
// with the digest a transfer seals it with.
func mustHave(t testing.TB, sock string, id stream.ObjectID, data, meta []byte) {
	t.Helper()
	if !has(t, sock, id, data, meta) {
		t.Fatalf("object %s was sealed without its digest", id)
	}
}

// has checks the bytes of id in the store and reports whether the store
// knows its digest.
func has(t testing.TB, sock string, id stream.ObjectID, data, meta []byte) bool {
	t.Helper()
	c := testutil.StoreClient(t, sock)
	o, err := c.GetOne(bg, id, 0)
	if err != nil {
		t.Fatalf("object %s not in %s: %v", id, sock, err)
	}
	defer c.Release(bg, id)
	if !bytes.Equal(o.Data, data) || !bytes.Equal(o.Metadata, meta) {
		t.Fatalf("object %s in %s: %d data bytes / %d metadata bytes differ from the original", id, sock, len(o.Data), len(o.Metadata))
	}
	return !o.Digest.IsZero()
}

// mustNotHave checks that no object, sealed or not, with id is in the store.
func mustNotHave(t testing.TB, sock string, id stream.ObjectID) {
	t.Helper()
	infos, err := testutil.StoreClient(t, sock).List(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.ID == id {
			t.Fatalf("object %s is in %s (state %s)", id, sock, in.State)
		}
	}
}

// The seed's example, in Go.
func TestSeedExample(t *testing.T) {
	a := testutil.StartNode(t, "a", "64MiB")
	b := testutil.StartNode(t, "b", "64MiB")
	ctx := bg
	data, meta := testutil.Pattern(3<<20, 1), []byte("seed")
	oid0, _ := stream.ParseObjectID("0102030405060708090a0b0c0d0e0f1011121314")
	putID(t, b.Socket, oid0, data, meta)

	c, err := stream.Connect(ctx, a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	oid, err := stream.ParseObjectID("0102030405060708090a0b0c0d0e0f1011121314")
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Sync(ctx, []stream.PeerRequest{
		{Kind: stream.Copy, From: b.Addr, Objects: []stream.ObjectID{oid}},
	})
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	c.Close()
	if len(res.Peers) != 1 || len(res.Peers[0].Objects) != 1 || res.Peers[0].Objects[0].Status != stream.StatusOK {
		t.Fatalf("result: %+v", res)
	}
	if res.Bytes != uint64(len(data)+len(meta)) || res.Objects != 1 {
		t.Fatalf("totals: %d bytes, %d objects", res.Bytes, res.Objects)
	}
	mustHave(t, a.Socket, oid, data, meta)
	has(t, b.Socket, oid, data, meta) // COPY keeps the source
}

func TestTakeDeletesAtSource(t *testing.T) {
	a := testutil.StartNode(t, "a", "64MiB")
	b := testutil.StartNode(t, "b", "64MiB")
	small, large := store.RandomObjectID(), store.RandomObjectID()
	putID(t, b.Socket, small, []byte("small"), nil)
	putID(t, b.Socket, large, testutil.Pattern(5<<20, 2), []byte("m"))
	res, err := streamClient(t, a.Addr).Sync(bg, []stream.PeerRequest{{Kind: stream.Take, From: b.Addr, Objects: []stream.ObjectID{small, large}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Peers[0].Objects {
		if o.Status != stream.StatusOK || !o.DeletedAtSource {
			t.Fatalf("take result %+v", o)
		}
	}
	mustHave(t, a.Socket, small, []byte("small"), nil)
	mustHave(t, a.Socket, large, testutil.Pattern(5<<20, 2), []byte("m"))
	mustNotHave(t, b.Socket, small)
	mustNotHave(t, b.Socket, large)
}

// One SYNC pulls from two peers at once, and reports each peer request
// and each object: present ones succeed, missing ones fail by name.
func TestMultiPeerSync(t *testing.T) {
	a := testutil.StartNode(t, "a", "64MiB")
	b := testutil.StartNode(t, "b", "64MiB")
	c := testutil.StartNode(t, "c", "64MiB")
	fromB, fromC, missing, already := store.RandomObjectID(), store.RandomObjectID(), store.RandomObjectID(), store.RandomObjectID()
	putID(t, b.Socket, fromB, testutil.Pattern(2<<20, 3), nil)
	putID(t, c.Socket, fromC, testutil.Pattern(100, 4), []byte("c"))
	putID(t, c.Socket, already, []byte("both"), nil)
	putID(t, a.Socket, already, []byte("both"), nil)

	res, err := streamClient(t, a.Addr).Sync(bg, []stream.PeerRequest{
		{Kind: stream.Copy, From: b.Addr, Objects: []stream.ObjectID{fromB}},
		{Kind: stream.Copy, From: c.Addr, Objects: []stream.ObjectID{fromC, missing, already}},
	})
	var se *stream.Error
	if !errors.As(err, &se) || se.Status != stream.StatusNotFound {
		t.Fatalf("want a not-found error, got %v", err)
	}
	if len(res.Peers) != 2 || res.Peers[0].Status != stream.StatusOK || res.Peers[1].Status != stream.StatusNotFound {
		t.Fatalf("peer statuses: %+v", res.Peers)
	}
	got := map[stream.ObjectID]stream.Status{}
	for _, p := range res.Peers {
		for _, o := range p.Objects {
			got[o.ID] = o.Status
		}
	}
	want := map[stream.ObjectID]stream.Status{fromB: stream.StatusOK, fromC: stream.StatusOK,
		missing: stream.StatusNotFound, already: stream.StatusAlreadyPresent}
	for id, st := range want {
		if got[id] != st {
			t.Errorf("object %s: %s, want %s", id, got[id], st)
		}
	}
	failed := res.Failed()
	if len(failed) != 1 || failed[0].ID != missing || !bytes.Contains([]byte(failed[0].Message), []byte(c.Addr)) {
		t.Fatalf("failed objects must name the object and the peer: %+v", failed)
	}
	mustHave(t, a.Socket, fromB, testutil.Pattern(2<<20, 3), nil)
	mustHave(t, a.Socket, fromC, testutil.Pattern(100, 4), []byte("c"))
	mustNotHave(t, a.Socket, missing)
}

// Exactly 65,536 objects in one peer request and exactly 64 KiB of
// metadata succeed.
func TestLimitsAtTheirMaximum(t *testing.T) {
	a := testutil.StartNode(t, "a", "96MiB")
	b := testutil.StartNode(t, "b", "96MiB")
	src := testutil.StoreClient(t, b.Socket)
	ids := make([]stream.ObjectID, stream.MaxObjectsPerPeerRequest)
	for i := range ids {
		ids[i] = store.RandomObjectID()
		if err := src.CreateAndSeal(bg, ids[i], []byte(fmt.Sprint(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	bigMeta := bytes.Repeat([]byte{'m'}, stream.MaxMetadataSize)
	metaID := store.RandomObjectID()
	putID(t, b.Socket, metaID, []byte("x"), bigMeta)

	client := streamClient(t, a.Addr)
	start := time.Now()
	res, err := client.Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: b.Addr, Objects: ids}})
	if err != nil {
		t.Fatalf("65,536 objects: %v", err)
	}
	t.Logf("65,536 objects copied in %v", time.Since(start))
	if res.Objects != stream.MaxObjectsPerPeerRequest {
		t.Fatalf("%d objects arrived", res.Objects)
	}
	if _, err := client.Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: b.Addr, Objects: []stream.ObjectID{metaID}}}); err != nil {
		t.Fatalf("64 KiB metadata: %v", err)
	}
	mustHave(t, a.Socket, metaID, []byte("x"), bigMeta)
	mustHave(t, a.Socket, ids[65535], []byte("65535"), nil)
}

// Every limit violation is rejected before anything moves, with its own
// status.
func TestLimitViolations(t *testing.T) {
	a := testutil.StartNode(t, "a", "16MiB")
	client := streamClient(t, a.Addr)
	id := store.RandomObjectID()
	tooMany := make([]stream.ObjectID, stream.MaxObjectsPerPeerRequest+1)
	for i := range tooMany {
		tooMany[i] = store.RandomObjectID()
	}
	tooManyPeers := make([]stream.PeerRequest, stream.MaxPeerRequests+1)
	for i := range tooManyPeers {
		tooManyPeers[i] = stream.PeerRequest{Kind: stream.Copy, From: "127.0.0.1:1", Objects: []stream.ObjectID{store.RandomObjectID()}}
	}
	cases := []struct {
		name string
		reqs []stream.PeerRequest
		want stream.Status
	}{
		{"no peer requests", nil, stream.StatusNoPeerRequests},
		{"too many peer requests", tooManyPeers, stream.StatusTooManyPeerRequests},
		{"no objects", []stream.PeerRequest{{Kind: stream.Copy, From: "127.0.0.1:1"}}, stream.StatusNoObjects},
		{"too many objects", []stream.PeerRequest{{Kind: stream.Copy, From: "127.0.0.1:1", Objects: tooMany}}, stream.StatusTooManyObjects},
		{"duplicate across peers", []stream.PeerRequest{{Kind: stream.Copy, From: "127.0.0.1:1", Objects: []stream.ObjectID{id}},
			{Kind: stream.Take, From: "127.0.0.1:2", Objects: []stream.ObjectID{id}}}, stream.StatusDuplicateID},
	}
	for _, tc := range cases {
		_, err := client.Sync(bg, tc.reqs)
		if !stream.IsStatus(err, tc.want) {
			t.Errorf("%s: got %v, want status %s", tc.name, err, tc.want)
		}
	}
	if _, err := client.Ping(bg); err != nil {
		t.Fatalf("client unusable after rejected requests: %v", err)
	}
}

func TestUnreachablePeer(t *testing.T) {
	a := testutil.StartNode(t, "a", "16MiB")
	dead := testutil.FreeAddr(t)
	id := store.RandomObjectID()
	start := time.Now()
	res, err := streamClient(t, a.Addr).Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: dead, Objects: []stream.ObjectID{id}}})
	if !stream.IsStatus(err, stream.StatusPeerUnreachable) || res.Peers[0].Objects[0].Status != stream.StatusPeerUnreachable {
		t.Fatalf("got %v / %+v", err, res)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("an unreachable peer took more than 10 s to report")
	}
}

func TestDirectCopyAndTake(t *testing.T) {
	b := testutil.StartNode(t, "b", "64MiB")
	localSock, _ := testutil.StartStoreProcess(t, "64MiB")
	local := testutil.StoreClient(t, localSock)
	x, y := store.RandomObjectID(), store.RandomObjectID()
	putID(t, b.Socket, x, testutil.Pattern(4<<20, 5), nil)
	putID(t, b.Socket, y, []byte("y"), []byte("meta"))
	if r, err := stream.CopyFrom(bg, b.Addr, local, []stream.ObjectID{x}); err != nil || r.Objects[0].Status != stream.StatusOK {
		t.Fatalf("CopyFrom: %v %+v", err, r)
	}
	if r, err := stream.TakeFrom(bg, b.Addr, local, []stream.ObjectID{y}); err != nil || !r.Objects[0].DeletedAtSource {
		t.Fatalf("TakeFrom: %v %+v", err, r)
	}
	mustHave(t, localSock, x, testutil.Pattern(4<<20, 5), nil)
	mustHave(t, localSock, y, []byte("y"), []byte("meta"))
	mustNotHave(t, b.Socket, y)
	has(t, b.Socket, x, testutil.Pattern(4<<20, 5), nil)
}

func TestPingStatList(t *testing.T) {
	a := testutil.StartNode(t, "node-a", "16MiB")
	id, err := testutil.StoreClient(t, a.Socket).Put(bg, []byte("listed"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := streamClient(t, a.Addr)
	if c.Node() != "node-a" {
		t.Errorf("node %q", c.Node())
	}
	if rtt, err := c.Ping(bg); err != nil || rtt <= 0 {
		t.Fatalf("ping: %v %v", rtt, err)
	}
	st, err := c.Stat(bg)
	if err != nil || st.Node != "node-a" || st.Store.Capacity != 16<<20 || st.Store.Objects != 1 {
		t.Fatalf("stat: %+v %v", st, err)
	}
	infos, err := c.List(bg)
	if err != nil || len(infos) != 1 || infos[0].ID != id || infos[0].DataSize != 6 || infos[0].Digest.IsZero() {
		t.Fatalf("list: %+v %v", infos, err)
	}
}

// Peers are reached over IPv6 as well as IPv4.
func TestIPv6Peer(t *testing.T) {
	a := testutil.StartNode(t, "a", "16MiB")
	sockB, _ := testutil.StartStoreProcess(t, "16MiB")
	_, addrB := testutil.StartStreamServer(t, "b6", sockB, "::1")
	id := store.RandomObjectID()
	putID(t, sockB, id, []byte("over ipv6"), nil)
	if _, err := streamClient(t, a.Addr).Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: addrB, Objects: []stream.ObjectID{id}}}); err != nil {
		t.Fatalf("copy from %s: %v", addrB, err)
	}
	mustHave(t, a.Socket, id, []byte("over ipv6"), nil)
}
