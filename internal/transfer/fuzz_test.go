package transfer

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/b3"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// validReply is what a correct source sends for one COPY'd object.
func validReply(id streamwire.ID, data, meta []byte) []byte {
	var b []byte
	b = streamwire.AppendFrame(b, streamwire.TypeCopyBegin, streamwire.ErrorReply{}.Append(nil))
	b = streamwire.AppendFrame(b, streamwire.TypeObjectHeader, streamwire.ObjectHeader{ID: id, DataSize: uint64(len(data)), MetaSize: uint32(len(meta))}.Append(nil))
	b = append(b, meta...)
	b = append(b, data...)
	d := b3.Sum(data)
	b = append(b, d[:]...)
	return streamwire.AppendFrame(b, streamwire.TypeCopyEnd, nil)
}

// FuzzReceive plays an arbitrary peer against the receiving side: whatever
// the bytes, Receive returns (no panic, no hang), and the store never
// holds an unsealed object or a sealed one with other bytes than the
// source's.
func FuzzReceive(f *testing.F) {
	sock, _ := testutil.StartStore(f, 8<<20)
	st, err := store.Connect(context.Background(), sock)
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	id := streamwire.ID{7}
	data, meta := []byte("the object's data"), []byte("meta")
	f.Add(validReply(id, data, meta))
	f.Add(validReply(id, make([]byte, 70000), nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, reply []byte) {
		local, peer := net.Pipe()
		go io.Copy(io.Discard, peer) // the request and the acks
		go func() { peer.Write(reply); time.Sleep(10 * time.Millisecond); peer.Close() }()
		dial := func() (*Conn, error) { return NewConn(local, 200*time.Millisecond), nil }
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, _ := Receive(ctx, dial, st, streamwire.KindCopy, []streamwire.ID{id}, ReceiveOptions{})
		if len(res) != 1 {
			t.Fatalf("%d results for one object", len(res))
		}
		infos, err := st.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range infos {
			if in.State != store.StateSealed {
				t.Fatalf("object %s left %s", in.ID, in.State)
			}
		}
		if o, err := st.GetOne(ctx, id, 0); err == nil {
			ok := (string(o.Data) == string(data) && string(o.Metadata) == string(meta)) || (len(o.Data) == 70000 && len(o.Metadata) == 0)
			st.Release(ctx, id)
			if !ok || !res[0].Status.Success() {
				t.Fatalf("sealed an object with other bytes than the source's (status %s)", res[0].Status)
			}
			st.Delete(ctx, id)
		}
	})
}
