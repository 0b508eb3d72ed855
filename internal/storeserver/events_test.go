package storeserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

func nextEvent(t *testing.T, sub *store.Subscription) store.Event {
	t.Helper()
	select {
	case ev, ok := <-sub.Events():
		if !ok {
			t.Fatalf("subscription ended: %v", sub.Err())
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return store.Event{}
}

// An object sealed without a digest is hashed in the background; a
// subscriber that asked for digest events learns its BLAKE3 then, one
// that did not (every subscriber before digest events) sees no new kind.
func TestSubscriberLearnsDigest(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	c := testutil.StoreClient(t, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	withDigests, err := store.Subscribe(ctx, sock, store.WithDigestEvents())
	if err != nil {
		t.Fatal(err)
	}
	defer withDigests.Close()
	plain, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()

	data := make([]byte, 40<<10) // more than one group: an outboard too
	for i := range data {
		data[i] = byte(i * 7)
	}
	id := store.RandomObjectID()
	buf, err := c.Create(ctx, id, uint64(len(data)), nil)
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, data)
	if err := c.Seal(ctx, id); err != nil { // a plain Seal: no digest
		t.Fatal(err)
	}
	c.Release(ctx, id)
	want := bao.Sum(data)
	for _, sub := range []*store.Subscription{withDigests, plain} {
		if ev := nextEvent(t, sub); ev.Kind != store.EventSealed || ev.ID != id || !ev.Digest.IsZero() {
			t.Fatalf("first event %+v; want the seal of %s without a digest", ev, id)
		}
	}
	ev := nextEvent(t, withDigests)
	if ev.Kind != store.EventDigest || ev.ID != id || ev.DataSize != uint64(len(data)) {
		t.Fatalf("second event %+v; want the digest of %s", ev, id)
	}
	if ev.Digest != want {
		t.Fatalf("digest event says %s; BLAKE3 of the data is %x", ev.Digest, want)
	}
	if _, err := c.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []*store.Subscription{withDigests, plain} {
		if ev := nextEvent(t, sub); ev.Kind != store.EventDeleted || ev.ID != id {
			t.Fatalf("event %+v; want the deletion of %s (and no digest event for a plain subscriber)", ev, id)
		}
	}
	// An object sealed with its digest brings no digest event.
	id2, err := c.Put(ctx, []byte("with a digest"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, withDigests); ev.Kind != store.EventSealed || ev.ID != id2 || ev.Digest.IsZero() {
		t.Fatalf("event %+v; want the seal of %s with its digest", ev, id2)
	}
	if _, _, err := c.Outboard(ctx, id2); err != nil { // the store hashes it now: same digest
		t.Fatal(err)
	}
	c.Delete(ctx, id2)
	if ev := nextEvent(t, withDigests); ev.Kind != store.EventDeleted || ev.ID != id2 {
		t.Fatalf("event %+v; want the deletion of %s, no digest event (the seal had it)", ev, id2)
	}
}

// Subscribe takes no payload (every subscriber before digest events) or
// flags; a flag the store does not know is refused, naming it, and the
// connection stays usable.
func TestSubscribeFlags(t *testing.T) {
	sock := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 1 << 20}).Socket
	cases := []struct {
		name    string
		payload []byte
		ok      bool
	}{
		{"no payload", nil, true},
		{"digest events", storewire.Subscribe{Flags: storewire.SubscribeDigests}.Append(nil), true},
		{"no events", storewire.Subscribe{Flags: storewire.SubscribeQuiet}.Append(nil), true},
		{"digests and no events", storewire.Subscribe{Flags: storewire.SubscribeDigests | storewire.SubscribeQuiet}.Append(nil), false},
		{"info and snapshot", storewire.Subscribe{Flags: storewire.SubscribeInfo | storewire.SubscribeSnapshot}.Append(nil), true},
		{"info and no events", storewire.Subscribe{Flags: storewire.SubscribeInfo | storewire.SubscribeQuiet}.Append(nil), false},
		{"cold events", storewire.Subscribe{Flags: storewire.SubscribeCold}.Append(nil), true},
		{"unknown flag", storewire.Subscribe{Flags: 32}.Append(nil), false},
		{"short flags", []byte{1, 0}, false},
	}
	for _, tc := range cases {
		rc := dialRaw(t, sock)
		rc.send(storewire.TypeSubscribe, 7, tc.payload)
		if tc.ok {
			rc.must(storewire.TypeSubscribe | storewire.ReplyBit)
			continue
		}
		p := rc.must(storewire.TypeError)
		var e storewire.ErrorReply
		if err := e.Decode(p); err != nil || e.Code != storewire.CodeInvalidRequest {
			t.Fatalf("%s: error %+v (%v), want InvalidRequest", tc.name, e, err)
		}
		rc.sync()
	}
}

// A quiet subscription gets no events, however busy the store, and ends
// as soon as the store stops: a stream server outside a cluster watches its
// store so.
func TestQuietSubscriptionOnlyEnds(t *testing.T) {
	st := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 1 << 20})
	ctx := context.Background()
	quiet, err := store.Subscribe(ctx, st.Socket, store.WithoutEvents())
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	loud, err := store.Subscribe(ctx, st.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer loud.Close()
	c := testutil.StoreClient(t, st.Socket)
	id, err := c.Put(ctx, []byte("an object"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, want := range []store.EventKind{store.EventSealed, store.EventDeleted} {
		if ev := <-loud.Events(); ev.Kind != want || ev.ID != id {
			t.Fatalf("the loud subscriber got %+v, want %s of %s", ev, want, id)
		}
	}
	// The loud subscriber has both events, queued before the quiet one's
	// would have been: the quiet one has none.
	select {
	case ev, ok := <-quiet.Events():
		t.Fatalf("the quiet subscription got %+v (open %v)", ev, ok)
	default:
	}
	st.Stop()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-quiet.Events():
			if !ok {
				return
			}
			t.Fatalf("the quiet subscription got %+v", ev)
		case <-deadline:
			t.Fatal("the quiet subscription did not end within 10 s of the store stopping")
		}
	}
}
