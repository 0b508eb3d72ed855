package storeserver_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// bigGet is a Get of the most ids a request may carry, none of them in
// the store, waiting forever.
func bigGet(t *testing.T) []byte {
	ids := make([]storewire.ID, storewire.MaxIDsPerRequest)
	for i := range ids {
		rand.Read(ids[i][:])
	}
	return storewire.Get{IDList: storewire.IDList{TimeoutMs: -1, IDs: ids}}.Append(nil)
}

// A blocked Get holds memory close to its request's size: it once held
// about 20 MiB for a 1.3 MB request (per-id maps), so 40 of them took a
// store from 7 MB to 809 MB.
func TestBlockedGetMemoryFollowsRequestSize(t *testing.T) {
	sock := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 1 << 20}).Socket
	rc := dialRaw(t, sock)
	rc.sync()
	const gets = 6
	reqBytes := uint64(len(bigGet(t)))
	before := liveHeap()
	for i := range gets {
		rc.send(storewire.TypeGet, uint32(i+1), bigGet(t))
	}
	rc.sync() // every Get is registered
	grown := int64(liveHeap()) - int64(before)
	limit := int64(gets * 4 * reqBytes)
	t.Logf("%d blocked Gets of %d bytes each: heap grew %d bytes (%.1f× the requests)", gets, reqBytes, grown, float64(grown)/float64(gets*reqBytes))
	if grown > limit {
		t.Fatalf("%d blocked Gets of %d-byte requests grew the heap by %d bytes; want under %d (4× the requests)", gets, reqBytes, grown, limit)
	}
}

// The memory of blocked Gets is bounded store-wide: beyond the budget a
// Get fails with a clear "store busy", the store keeps serving, and the
// budget is freed when the Gets end.
func TestBlockedGetBudget(t *testing.T) {
	sock := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 1 << 20, WaitMemory: 8 << 20}).Socket
	a := dialRaw(t, sock)
	var refused string
	for i := 1; i <= 10 && refused == ""; i++ {
		a.send(storewire.TypeGet, uint32(i), bigGet(t))
		a.send(storewire.TypeStats, 1000, nil) // answered after the Get is handled
		for {
			h, p, err := a.read()
			if err != nil {
				t.Fatal(err)
			}
			if storewire.Type(h.Type) == storewire.TypeError {
				var e storewire.ErrorReply
				if err := e.Decode(p); err != nil || e.Code != storewire.CodeBusy {
					t.Fatalf("Get %d: error %+v (%v), want code Busy", i, e, err)
				}
				refused = e.Message
				continue
			}
			if h.ReqID == 1000 {
				break
			}
			t.Fatalf("Get %d answered (%s) though none of its objects exists", h.ReqID, storewire.Type(h.Type))
		}
	}
	if !strings.Contains(refused, "store busy") || !strings.Contains(refused, "budget") {
		t.Fatalf("over the budget: %q, want a store busy error naming the budget", refused)
	}
	// A small Get from another client is refused too while the budget is
	// spent; once the first client goes, it waits as it should.
	b := dialRaw(t, sock)
	small := storewire.Get{IDList: storewire.IDList{TimeoutMs: -1, IDs: make([]storewire.ID, 30000)}}.Append(nil) // more than the 1.3 MB left
	b.send(storewire.TypeGet, 1, small)
	b.must(storewire.TypeError)
	a.uc.Close()
	for ok := false; !ok; {
		b.send(storewire.TypeGet, 2, small)
		b.send(storewire.TypeStats, 3, nil)
		h, _, err := b.read()
		if err != nil {
			t.Fatal(err)
		}
		if ok = storewire.Type(h.Type) == storewire.TypeStats|storewire.ReplyBit; !ok {
			b.must(storewire.TypeStats | storewire.ReplyBit)
		}
	}
}

// A connection does not keep its largest request buffer: 6 idle
// connections once held 451 MB.
func TestIdleConnectionsDropLargeBuffers(t *testing.T) {
	sock := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 1 << 20}).Socket
	const conns, size = 4, 16 << 20
	var rcs []*rawConn
	for range conns {
		rcs = append(rcs, dialRaw(t, sock))
	}
	before := liveHeap()
	for _, rc := range rcs {
		// A 16 MiB outboard for an object that does not exist: an error
		// reply, and the connection stays open.
		rc.send(storewire.TypeSetOutboard, 1, storewire.SetOutboard{Outboard: make([]byte, size)}.Append(nil))
		rc.must(storewire.TypeError)
	}
	if grown := int64(liveHeap()) - int64(before); grown > 4<<20 {
		t.Fatalf("%d idle connections that each sent a %d-byte request hold %d bytes of heap; want under 4 MiB", conns, size, grown)
	}
}

// A subscriber reserves no room for the events it may fall behind by: a
// 65,536-event channel once cost every subscriber 5 MiB, idle or not.
func TestIdleSubscribersHoldLittle(t *testing.T) {
	sock := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 1 << 20}).Socket
	const subscribers = 8
	var rcs []*rawConn
	for range subscribers {
		rcs = append(rcs, dialRaw(t, sock))
	}
	before := liveHeap()
	for _, rc := range rcs {
		rc.send(storewire.TypeSubscribe, 1, nil)
		rc.must(storewire.TypeSubscribe | storewire.ReplyBit)
	}
	if grown := int64(liveHeap()) - int64(before); grown > subscribers*64<<10 {
		t.Fatalf("%d idle subscribers hold %d bytes of heap; want under 64 KiB each", subscribers, grown)
	}
}

// A subscriber that stops reading is disconnected once its backlog is
// full; the store serves on.
func TestStalledSubscriberDropped(t *testing.T) {
	sock := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 1 << 20, EventQueue: 16}).Socket
	sub := dialRaw(t, sock)
	sub.send(storewire.TypeSubscribe, 1, nil)
	sub.must(storewire.TypeSubscribe | storewire.ReplyBit)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	// Enough events to fill the socket's buffer and then the queue.
	for i := 0; i < 20000; i++ {
		id := store.RandomObjectID()
		if err := c.PutID(ctx, id, nil, nil); err != nil {
			t.Fatal(err)
		}
		c.Delete(ctx, id)
	}
	for {
		h, _, err := sub.read()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("stalled subscriber: %v; want it disconnected", err)
			}
			break
		}
		if storewire.Type(h.Type) != storewire.TypeEvent {
			t.Fatalf("subscriber got %s", storewire.Type(h.Type))
		}
	}
	if _, err := c.Stats(ctx); err != nil {
		t.Fatal(err)
	}
}
