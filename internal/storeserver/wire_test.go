package storeserver_test

import (
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// A timeout too long for a timer (2^63-1 ms once overflowed into a
// negative duration and answered "not found" at once) waits forever, as
// does any negative one.
func TestHugeGetTimeoutWaits(t *testing.T) {
	sock := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 1 << 20}).Socket
	rc := dialRaw(t, sock)
	c := testutil.StoreClient(t, sock)
	ids := []store.ObjectID{store.RandomObjectID(), store.RandomObjectID(), store.RandomObjectID()}
	for i, ms := range []int64{math.MaxInt64, math.MaxInt64 / 1000, -7} {
		rc.send(storewire.TypeGet, uint32(i+1), storewire.Get{IDList: storewire.IDList{TimeoutMs: ms, IDs: []storewire.ID{ids[i]}}}.Append(nil))
	}
	rc.sync()
	for _, id := range ids {
		if err := c.PutID(context.Background(), id, []byte("late"), nil); err != nil {
			t.Fatal(err)
		}
	}
	for range ids {
		h, p, err := rc.read()
		if err != nil {
			t.Fatal(err)
		}
		var r storewire.GetReply
		if err := r.Decode(p); err != nil || storewire.Type(h.Type) != storewire.TypeGet|storewire.ReplyBit {
			t.Fatalf("Get %d: %s reply (%v)", h.ReqID, storewire.Type(h.Type), err)
		}
		if !r.Objects[0].Found {
			t.Errorf("Get %d answered not found: its timeout did not wait for the seal", h.ReqID)
		}
	}
}

// A frame with a bad header gets the Error reply the protocol promises,
// even with an empty payload, and then the connection is closed.
func TestBadHeaderGetsErrorReply(t *testing.T) {
	sock := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 1 << 20}).Socket
	for _, tc := range []struct {
		name   string
		length uint32
		flags  uint16
		want   string
	}{
		{"flags, empty payload", 0, 1, "flags"},
		{"flags with payload", 8, 0x80, "flags"},
		{"oversized", storewire.MaxRequestPayload + 1, 0, "exceeds"},
	} {
		rc := dialRaw(t, sock)
		var hb [storewire.HeaderSize]byte
		storewire.PutHeader(hb[:], storewire.Header{Length: tc.length, Type: uint16(storewire.TypeStats), Flags: tc.flags, ReqID: 9})
		rc.uc.Write(hb[:])
		var e storewire.ErrorReply
		if err := e.Decode(rc.must(storewire.TypeError)); err != nil || e.Code != storewire.CodeInvalidRequest || !strings.Contains(e.Message, tc.want) {
			t.Errorf("%s: error reply %+v (%v), want InvalidRequest naming %q", tc.name, e, err, tc.want)
		}
		if _, _, err := rc.read(); !errors.Is(err, io.EOF) {
			t.Errorf("%s: connection not closed after the error: %v", tc.name, err)
		}
	}
	// The store serves on.
	testutil.StoreClient(t, sock).Stats(context.Background())
}

// The capacity a store advertises is -m, and an object that large fits:
// -m 10000 advertises 10000 (as pyarrow's plasma store did) and holds the
// 64-byte blocks a 10000-byte object takes.
func TestAdvertisedCapacityFits(t *testing.T) {
	sock := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 10000}).Socket
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Capacity() != 10000 || st.Capacity != 10000 {
		t.Fatalf("capacity advertised %d, stats %d; want 10000", c.Capacity(), st.Capacity)
	}
	if err := c.PutID(ctx, store.RandomObjectID(), make([]byte, c.Capacity()), nil); err != nil {
		t.Fatalf("an object of the advertised capacity: %v", err)
	}
	if _, err := storeserver.New(storeserver.Config{Socket: sock + "2", Capacity: 63}); err == nil || !strings.Contains(err.Error(), "holds nothing") {
		t.Fatalf("a 63-byte store: %v", err)
	}
}
