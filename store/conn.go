package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// frame is one received message; p is owned by the receiver.
type frame struct {
	t storewire.Type
	p []byte
}

// mux is a connection to the store with requests multiplexed by id: one
// goroutine reads replies and hands each to the call waiting for it.
type mux struct {
	uc *net.UnixConn

	wmu  sync.Mutex
	wbuf []byte

	mu      sync.Mutex
	next    uint32
	pending map[uint32]chan frame
	err     error // set once the connection is dead

	events chan frame // frames with request id 0 (subscriptions)
	done   chan struct{}
}

// dial connects, performs the Hello exchange and returns the arena
// descriptor the store sent with its reply.
func dial(ctx context.Context, socket string) (*mux, *os.File, storewire.HelloReply, error) {
	var hr storewire.HelloReply
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, nil, hr, fmt.Errorf("connect to store at %s (is plasma-store-server running?): %w", socket, err)
	}
	uc := c.(*net.UnixConn)
	if dl, ok := ctx.Deadline(); ok {
		uc.SetDeadline(dl)
	} else {
		uc.SetDeadline(time.Now().Add(30 * time.Second))
	}
	f, hr, err := handshake(uc)
	if err != nil {
		uc.Close()
		return nil, nil, hr, fmt.Errorf("store at %s: %w", socket, err)
	}
	uc.SetDeadline(time.Time{})
	m := &mux{uc: uc, pending: map[uint32]chan frame{}, events: make(chan frame, 1024), done: make(chan struct{})}
	go m.readLoop()
	return m, f, hr, nil
}

func handshake(uc *net.UnixConn) (*os.File, storewire.HelloReply, error) {
	var hr storewire.HelloReply
	hello := storewire.Hello{Version: storewire.Version}
	copy(hello.Magic[:], storewire.Magic)
	if _, err := uc.Write(storewire.AppendFrame(nil, storewire.TypeHello, 1, hello.Append(nil))); err != nil {
		return nil, hr, fmt.Errorf("send hello: %w", err)
	}
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, hr, fmt.Errorf("read hello reply: %w", err)
	}
	var f *os.File
	if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, cm := range cmsgs {
			if fds, err := unix.ParseUnixRights(&cm); err == nil {
				for _, fd := range fds {
					if f == nil {
						f = os.NewFile(uintptr(fd), "plasma-arena")
					} else {
						unix.Close(fd)
					}
				}
			}
		}
	}
	// The reply may arrive in more than one piece; the descriptor rides
	// on the first.
	for n < storewire.HeaderSize {
		k, err := uc.Read(buf[n:])
		if err != nil {
			return closeFile(f), hr, fmt.Errorf("read hello reply: %w", err)
		}
		n += k
	}
	h, err := storewire.ParseHeader(buf[:n], 200)
	if err != nil {
		return closeFile(f), hr, err
	}
	total := storewire.HeaderSize + int(h.Length)
	if n < total {
		if _, err := io.ReadFull(uc, buf[n:total]); err != nil {
			return closeFile(f), hr, fmt.Errorf("read hello reply: %w", err)
		}
	}
	p := buf[storewire.HeaderSize:total]
	if h.Type == storewire.TypeError {
		var e storewire.ErrorReply
		if err := e.Decode(p); err != nil {
			return closeFile(f), hr, err
		}
		return closeFile(f), hr, &Error{Code: e.Code, Message: e.Message}
	}
	if err := hr.Decode(p); err != nil {
		return closeFile(f), hr, err
	}
	if f == nil {
		return nil, hr, errors.New("store sent no arena descriptor")
	}
	return f, hr, nil
}

func closeFile(f *os.File) *os.File {
	if f != nil {
		f.Close()
	}
	return nil
}

func (m *mux) readLoop() {
	r := bufio.NewReaderSize(m.uc, 64<<10)
	var err error
	for {
		var h storewire.Header
		var p []byte
		h, p, _, err = storewire.ReadFrame(r, nil, storewire.MaxReplyPayload)
		if err != nil {
			break
		}
		if h.ReqID == 0 {
			select {
			case m.events <- frame{h.Type, p}:
			case <-m.done:
			}
			continue
		}
		m.mu.Lock()
		ch := m.pending[h.ReqID]
		// A List reply comes in pages; the call stays registered until
		// the last one (More=0).
		if !(h.Type == storewire.TypeList|storewire.ReplyBit && len(p) > 0 && p[0] == 1) {
			delete(m.pending, h.ReqID)
		}
		m.mu.Unlock()
		if ch != nil {
			ch <- frame{h.Type, p}
		}
	}
	m.fail(err)
}

// fail marks the connection dead and wakes every waiting call.
func (m *mux) fail(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = ErrClosed
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return
	}
	m.err = err
	for id, ch := range m.pending {
		close(ch)
		delete(m.pending, id)
	}
	close(m.done)
	m.uc.Close()
}

// start sends a request and returns the channel its reply will arrive on.
func (m *mux) start(t storewire.Type, payload []byte, buffer int) (uint32, chan frame, error) {
	ch := make(chan frame, buffer)
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return 0, nil, m.err
	}
	m.next++
	if m.next == 0 {
		m.next = 1
	}
	id := m.next
	m.pending[id] = ch
	m.mu.Unlock()

	m.wmu.Lock()
	m.wbuf = storewire.AppendFrame(m.wbuf[:0], t, id, payload)
	_, err := m.uc.Write(m.wbuf)
	m.wmu.Unlock()
	if err != nil {
		m.fail(err)
		return 0, nil, fmt.Errorf("send %s to store: %w", t, err)
	}
	return id, ch, nil
}

// call sends a request and waits for its reply. If ctx ends first the
// reply is handed to orphan (if set) when it arrives, so that references a
// late Get reply carries are not leaked.
func (m *mux) call(ctx context.Context, t storewire.Type, payload []byte, orphan func(frame)) (frame, error) {
	_, ch, err := m.start(t, payload, 1)
	if err != nil {
		return frame{}, err
	}
	select {
	case f, ok := <-ch:
		return m.check(t, f, ok)
	case <-ctx.Done():
		if orphan != nil {
			go func() {
				if f, ok := <-ch; ok {
					orphan(f)
				}
			}()
		}
		return frame{}, fmt.Errorf("%s: %w", t, ctx.Err())
	}
}

// check turns a received frame into a reply or an error.
func (m *mux) check(t storewire.Type, f frame, ok bool) (frame, error) {
	if !ok {
		m.mu.Lock()
		err := m.err
		m.mu.Unlock()
		return frame{}, fmt.Errorf("%s: %w", t, err)
	}
	if f.t == storewire.TypeError {
		var e storewire.ErrorReply
		if err := e.Decode(f.p); err != nil {
			return frame{}, fmt.Errorf("%s: undecodable error reply: %w", t, err)
		}
		return frame{}, &Error{Code: e.Code, Message: e.Message}
	}
	if f.t != t|storewire.ReplyBit {
		return frame{}, fmt.Errorf("%s: unexpected reply %s", t, f.t)
	}
	return f, nil
}

func (m *mux) close() error {
	m.fail(ErrClosed)
	return nil
}
