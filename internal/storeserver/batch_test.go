package storeserver_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

func batchOf(n int) storewire.CreateAndSealBatch {
	var m storewire.CreateAndSealBatch
	for i := range n {
		m.Objects = append(m.Objects, storewire.CreateAndSeal{ID: storewire.ID{byte(i), byte(i >> 8), 1}, Data: make([]byte, 1024)})
	}
	return m
}

// A client that dies in the middle of sending a batch leaves nothing
// behind: the store acts on a request only once all of it arrived.
func TestCreateAndSealBatchClientDiesMidRequest(t *testing.T) {
	sock, _ := testutil.StartStore(t, 16<<20)
	rc := dialRaw(t, sock)
	frame := storewire.AppendFrame(nil, storewire.TypeCreateAndSealBatch, 1, batchOf(500).Append(nil))
	if _, err := rc.uc.Write(frame[:len(frame)/2]); err != nil {
		t.Fatal(err)
	}
	rc.uc.Close()

	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Clients == 1 { // only this one: the dead client is gone
			if st.Objects != 0 || st.Used != 0 {
				t.Fatalf("after the client died mid-batch: %d objects, %d bytes used", st.Objects, st.Used)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead client is still connected: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A batch with one malformed object is refused whole, with a clear error,
// and the connection stays usable.
func TestCreateAndSealBatchMalformed(t *testing.T) {
	sock, _ := testutil.StartStore(t, 16<<20)
	rc := dialRaw(t, sock)
	p := batchOf(3).Append(nil)
	p[len(p)-storewire.DigestSize-1] = 0x40 // unknown flag on the last object
	rc.send(storewire.TypeCreateAndSealBatch, 1, p)
	var e storewire.ErrorReply
	if err := e.Decode(rc.must(storewire.TypeError)); err != nil || e.Code != storewire.CodeInvalidRequest {
		t.Fatalf("error reply %+v (%v), want InvalidRequest", e, err)
	}
	rc.send(storewire.TypeCreateAndSealBatch, 2, batchOf(3).Append(nil))
	var r storewire.CreateAndSealBatchReply
	if err := r.Decode(rc.must(storewire.TypeCreateAndSealBatch | storewire.ReplyBit)); err != nil || len(r.Results) != 3 {
		t.Fatalf("reply %+v: %v", r, err)
	}
	for i, res := range r.Results {
		if res.Code != storewire.CodeOK {
			t.Fatalf("object %d: %+v (the refused batch left it behind?)", i, res)
		}
	}
}

// Batches (and Persists, the type before them) have latency series of
// their own rather than counting as unknown requests.
func TestCreateAndSealBatchMetrics(t *testing.T) {
	srv := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 4 << 20, MetricsAddr: "127.0.0.1:0"})
	c := testutil.StoreClient(t, srv.Socket)
	errs, err := c.CreateAndSealBatch(context.Background(), []store.BatchObject{{ID: store.ObjectID{1}}, {ID: store.ObjectID{1}}})
	if err != nil || errs[0] != nil || !errors.Is(errs[1], store.ErrObjectExists) {
		t.Fatalf("batch: %v, %v", errs, err)
	}
	m := scrape(t, srv.Server.MetricsAddr())
	if got := m[`plasma_store_request_duration_seconds_count{type="CreateAndSealBatch"}`]; got != 1 {
		t.Errorf("CreateAndSealBatch requests counted: %v, want 1", got)
	}
	if got := m[`plasma_store_unknown_requests_total`]; got != 0 {
		t.Errorf("unknown requests: %v, want 0", got)
	}
}
