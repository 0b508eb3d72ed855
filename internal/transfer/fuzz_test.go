package transfer

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// validReply is what a correct source sends for one COPY'd object, with
// or without its outboard.
func validReply(id streamwire.ID, data, meta []byte, withOutboard bool) []byte {
	var b []byte
	outboard, d := bao.Build(data)
	if !withOutboard {
		outboard = nil
	}
	b = streamwire.AppendFrame(b, streamwire.TypeCopyBegin, streamwire.ErrorReply{}.Append(nil))
	b = streamwire.AppendFrame(b, streamwire.TypeObjectHeader, streamwire.ObjectHeader{ID: id, DataSize: uint64(len(data)),
		MetaSize: uint32(len(meta)), OutboardSize: uint32(len(outboard))}.Append(nil))
	md := bao.Sum(meta)
	b = append(b, meta...)
	b = append(b, d[:]...)
	b = append(b, md[:]...)
	b = append(b, outboard...)
	b = append(b, data...)
	return streamwire.AppendFrame(b, streamwire.TypeCopyEnd, nil)
}

// receiveReply runs Receive of one object against a peer that sends reply.
func receiveReply(t *testing.T, st *store.Client, id streamwire.ID, reply []byte) []streamwire.ObjectResult {
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
	return res
}

// The fuzz seeds are right: a correct source's bytes are stored, and a
// flipped byte in a group is rejected, with or without an outboard.
func TestReceiveSeeds(t *testing.T) {
	sock, _ := testutil.StartStore(t, 8<<20)
	st, err := store.Connect(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id := streamwire.ID{8}
	big := make([]byte, 1<<20+70000)
	for i := range big {
		big[i] = byte(i / 7)
	}
	for _, withOutboard := range []bool{false, true} {
		reply := validReply(id, big, []byte("m"), withOutboard)
		if res := receiveReply(t, st, id, reply); res[0].Status != streamwire.StatusOK {
			t.Fatalf("outboard %v: %+v", withOutboard, res[0])
		}
		o, err := st.GetOne(context.Background(), id, 0)
		if err != nil || string(o.Data) != string(big) {
			t.Fatalf("outboard %v: stored %v", withOutboard, err)
		}
		st.Release(context.Background(), id)
		st.Delete(context.Background(), id)
		reply[len(reply)-12-len(big)+500000] ^= 1 // in the data, before the CopyEnd frame
		if res := receiveReply(t, st, id, reply); res[0].Status != streamwire.StatusIntegrityFailure {
			t.Fatalf("outboard %v, a flipped byte: %+v", withOutboard, res[0])
		} else if withOutboard && !strings.Contains(res[0].Message, "group 30 ") {
			t.Fatalf("the message does not name the corrupt group: %s", res[0].Message)
		}
		if ok, _ := st.Contains(context.Background(), id); ok {
			t.Fatal("a corrupt object was sealed")
		}
		// A flipped byte of metadata is caught too.
		reply = validReply(id, big, []byte("meta"), withOutboard)
		reply[bytes.Index(reply, []byte("meta"))] ^= 1
		if res := receiveReply(t, st, id, reply); res[0].Status != streamwire.StatusIntegrityFailure || !strings.Contains(res[0].Message, "metadata") {
			t.Fatalf("outboard %v, flipped metadata: %+v", withOutboard, res[0])
		}
		if ok, _ := st.Contains(context.Background(), id); ok {
			t.Fatal("an object with corrupt metadata was sealed")
		}
	}
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
	big := make([]byte, 1<<20+70000) // over 1 MiB: received in place, verified by groups
	f.Add(validReply(id, data, meta, false))
	f.Add(validReply(id, big, nil, true))
	f.Add(validReply(id, big, nil, false))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, reply []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res := receiveReply(t, st, id, reply)
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
			ok := (string(o.Data) == string(data) && string(o.Metadata) == string(meta)) || (string(o.Data) == string(big) && len(o.Metadata) == 0)
			st.Release(ctx, id)
			if !ok || !res[0].Status.Success() {
				t.Fatalf("sealed an object with other bytes than the source's (status %s)", res[0].Status)
			}
			st.Delete(ctx, id)
		}
	})
}
