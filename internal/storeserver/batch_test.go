package storeserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/internal/testutil"
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
