package stream_test

import (
	"strings"
	"testing"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// Three 6 MB objects moved into a 16 MiB store: two fit, the third is
// refused as store full (it would have evicted the first), and every
// object the result reports as moved is in the destination store. A TAKE
// deletes at the source exactly those, so no object is ever in neither
// store; a COPY reports exactly what remains.
func TestObjectsOfOneTransferNeverEvictEachOther(t *testing.T) {
	const size = 6_000_000
	for _, tc := range []struct {
		name   string
		kind   stream.Kind
		direct bool // straight into a store (stream.CopyFrom/TakeFrom), no stream server
		peers  int  // peer requests of the SYNC the objects are split over
	}{
		{"take", stream.Take, false, 1},
		{"copy", stream.Copy, false, 1},
		{"take from two peers", stream.Take, false, 2},
		{"direct take", stream.Take, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dstSock, dstAddr string
			if tc.direct {
				dstSock, _ = testutil.StartStoreProcess(t, "16MiB")
			} else {
				a := testutil.StartNode(t, "a", "16MiB")
				dstSock, dstAddr = a.Socket, a.Addr
			}
			srcs := []*testutil.Node{testutil.StartNode(t, "b", "32MiB")}
			if tc.peers == 2 {
				srcs = append(srcs, testutil.StartNode(t, "c", "32MiB"))
			}
			var ids []stream.ObjectID
			src := map[stream.ObjectID]*testutil.Node{}
			reqs := make([]stream.PeerRequest, len(srcs))
			for i := range 3 {
				id, n := store.RandomObjectID(), srcs[i%len(srcs)]
				putID(t, n.Socket, id, testutil.Pattern(size, byte(i)), []byte("m"))
				ids, src[id] = append(ids, id), n
				reqs[i%len(srcs)].Kind, reqs[i%len(srcs)].From = tc.kind, n.Addr
				reqs[i%len(srcs)].Objects = append(reqs[i%len(srcs)].Objects, id)
			}

			var objs []stream.ObjectResult
			var err error
			if tc.direct {
				var r *stream.PeerResult
				r, err = stream.TakeFrom(bg, srcs[0].Addr, testutil.StoreClient(t, dstSock), ids)
				objs = r.Objects
			} else {
				var res *stream.SyncResult
				res, err = streamClient(t, dstAddr).Sync(bg, reqs)
				for _, p := range res.Peers {
					objs = append(objs, p.Objects...)
				}
			}
			if !stream.IsStatus(err, stream.StatusStoreFull) {
				t.Fatalf("want store full, got %v", err)
			}
			moved, refused := 0, 0
			for _, o := range objs {
				i := indexOf(ids, o.ID)
				switch o.Status {
				case stream.StatusOK:
					moved++
					mustHave(t, dstSock, o.ID, testutil.Pattern(size, byte(i)), []byte("m"))
					if o.DeletedAtSource != (tc.kind == stream.Take) {
						t.Fatalf("%s %s: deleted at the source %v", tc.kind, o.ID, o.DeletedAtSource)
					}
					if tc.kind == stream.Take {
						mustNotHave(t, src[o.ID].Socket, o.ID)
					}
				case stream.StatusStoreFull:
					refused++
					if o.DeletedAtSource {
						t.Fatalf("refused object %s deleted at the source", o.ID)
					}
					for _, want := range []string{"store full", o.ID.String(), "bytes", "free space"} {
						if !strings.Contains(o.Message, want) {
							t.Fatalf("message %q lacks %q", o.Message, want)
						}
					}
					if tc.kind == stream.Take && !strings.Contains(o.Message, "stays at the source") {
						t.Fatalf("message %q does not say the object stays at the source", o.Message)
					}
					has(t, src[o.ID].Socket, o.ID, testutil.Pattern(size, byte(i)), []byte("m"))
					mustNotHave(t, dstSock, o.ID)
				default:
					t.Fatalf("object %s: %s %s", o.ID, o.Status, o.Message)
				}
			}
			if moved != 2 || refused != 1 {
				t.Fatalf("%d moved, %d refused; want 2 and 1", moved, refused)
			}
		})
	}
}

// A FETCH reports an object already present only if it still is when the
// reply is sent: the object it fetches next cannot evict it.
func TestFetchKeepsWhatItReportsPresent(t *testing.T) {
	nodes, _ := startCluster(t, "a", "b")
	a, b := nodes[0], nodes[1]
	here, there := store.RandomObjectID(), store.RandomObjectID()
	putID(t, a.Socket, here, testutil.Pattern(30<<20, 1), nil)
	putID(t, b.Socket, there, testutil.Pattern(40<<20, 2), nil)
	waitHolders(t, streamClient(t, a.Addr), there, "[b]")
	res, err := streamClient(t, a.Addr).Fetch(bg, []stream.ObjectID{here, there})
	if !stream.IsStatus(err, stream.StatusStoreFull) {
		t.Fatalf("want store full, got %v", err)
	}
	if o := res.Objects; o[0].Status != stream.StatusAlreadyPresent || o[1].Status != stream.StatusStoreFull || !strings.Contains(o[1].Message, "free space") {
		t.Fatalf("results %+v", o)
	}
	has(t, a.Socket, here, testutil.Pattern(30<<20, 1), nil)
	mustNotHave(t, a.Socket, there)
}

// A TAKE right after a COPY of the same object broke: the verified part
// the server keeps for a resumption is its own, not "another client's":
// the TAKE discards it and moves the object.
func TestTakeAfterABrokenCopy(t *testing.T) {
	const size = 20 << 20
	a := testutil.StartNode(t, "a", "64MiB") // --resume-keep: the default 2 min
	b := testutil.StartNode(t, "b", "64MiB")
	id := store.RandomObjectID()
	data := randomData(size, 3)
	putID(t, b.Socket, id, data, nil)
	cut := testutil.StartProxy(t, b.Addr, func(p *testutil.Proxy) { p.CutTotalAt = size / 2 })
	_, err := streamClient(t, a.Addr).Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: cut.Addr, Objects: []stream.ObjectID{id}}})
	if !stream.IsStatus(err, stream.StatusConnectionLost) || !strings.Contains(err.Error(), "kept for a resumption") {
		t.Fatalf("want the cut COPY to keep its verified part: %v", err)
	}
	res, err := streamClient(t, a.Addr).Sync(bg, []stream.PeerRequest{{Kind: stream.Take, From: b.Addr, Objects: []stream.ObjectID{id}}})
	if err != nil || !res.Peers[0].Objects[0].DeletedAtSource {
		t.Fatalf("TAKE after the broken COPY: %v %+v", err, res)
	}
	mustHave(t, a.Socket, id, data, nil)
	mustNotHave(t, b.Socket, id)
}

func indexOf(ids []stream.ObjectID, id stream.ObjectID) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}
