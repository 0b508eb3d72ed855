package storeserver_test

import (
	"bufio"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// rawConn speaks the store protocol frame by frame, for requests the Go
// client never sends.
type rawConn struct {
	t  *testing.T
	uc *net.UnixConn
	r  *bufio.Reader
}

func dialRaw(t *testing.T, sock string) *rawConn {
	t.Helper()
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	rc := &rawConn{t: t, uc: uc, r: bufio.NewReader(uc)}
	hello := storewire.Hello{Version: storewire.Version}
	copy(hello.Magic[:], storewire.Magic)
	rc.send(storewire.TypeHello, 1, hello.Append(nil))
	// The arena descriptor rides on the reply: receive and close it.
	buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
	uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatalf("hello reply: %v", err)
	}
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			fds, _ := unix.ParseUnixRights(&m)
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
	}
	if h, _ := storewire.ParseHeader(buf[:n], 256); storewire.Type(h.Type) != storewire.TypeHello|storewire.ReplyBit || int(h.Length)+storewire.HeaderSize != n {
		t.Fatalf("hello reply: type %s, %d bytes", storewire.Type(h.Type), n)
	}
	return rc
}

func (rc *rawConn) send(typ storewire.Type, reqID uint32, payload []byte) {
	rc.t.Helper()
	rc.uc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := rc.uc.Write(storewire.AppendFrame(nil, typ, reqID, payload)); err != nil {
		rc.t.Fatalf("send %s: %v", typ, err)
	}
}

// read returns the next frame, failing the test after 10 s.
func (rc *rawConn) read() (storewire.Header, []byte, error) {
	rc.uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	h, p, _, err := storewire.ReadFrame(rc.r, nil, storewire.MaxReplyPayload)
	return h, p, err
}

// must reads the next frame and checks its type.
func (rc *rawConn) must(want storewire.Type) []byte {
	rc.t.Helper()
	h, p, err := rc.read()
	if err != nil {
		rc.t.Fatalf("waiting for %s: %v", want, err)
	}
	if got := storewire.Type(h.Type); got != want {
		var e storewire.ErrorReply
		e.Decode(p)
		rc.t.Fatalf("got %s (%s), want %s", got, e.Message, want)
	}
	return p
}

// sync makes sure the store handled every request sent before it: the
// connection handles requests in order.
func (rc *rawConn) sync() {
	rc.t.Helper()
	rc.send(storewire.TypeStats, 0xfffffff0, nil)
	for {
		h, p, err := rc.read()
		if err != nil {
			rc.t.Fatalf("sync: %v", err)
		}
		if h.ReqID == 0xfffffff0 {
			if storewire.Type(h.Type) != storewire.TypeStats|storewire.ReplyBit {
				var e storewire.ErrorReply
				e.Decode(p)
				rc.t.Fatalf("sync: %s %s", storewire.Type(h.Type), e.Message)
			}
			return
		}
	}
}

// liveHeap is the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
