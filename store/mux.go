package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/spinconn"
	"github.com/plasmastream/plasmastream/internal/storewire"
)

// frame is one received message; p is owned by the receiver.
type frame struct {
	t storewire.Type
	p []byte
}

// mux is a connection to the store with requests multiplexed by id.
//
// There is no reader goroutine: a caller waiting for its reply takes the
// read token and reads the socket itself, handing replies that belong to
// other callers to them, until its own arrives; then it passes the token
// on. A lone caller thus reads its reply directly, without a goroutine
// hand-off — on machines where waking a goroutine costs as much as the
// round trip itself, that halves the latency of every request.
type mux struct {
	uc    sock
	r     *bufio.Reader // used only by the holder of token
	token chan struct{} // capacity 1; holding it means reading the socket

	wmu  sync.Mutex
	wbuf []byte

	mu      sync.Mutex
	next    uint32
	pending map[uint32]*pend
	err     error // set once the connection is dead
	done    chan struct{}
}

// keepBuffer is the largest request buffer a connection keeps between
// requests.
const keepBuffer = 64 << 10

// sock is the connection's socket: a *spinconn.Conn, or the
// *net.UnixConn itself for a connection that parks between messages.
type sock interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
}

// clientSpin is how long a caller polls for its reply before parking; the
// store answers most requests well within it (see package spinconn).
var clientSpin = 100 * time.Microsecond

// newMux takes over uc: polled for replies out of the runtime's poller,
// unless park is set (or the descriptor cannot be duplicated).
func newMux(uc *net.UnixConn, park bool) *mux {
	var s sock = uc
	if !park {
		if c, err := spinconn.Detach(uc, clientSpin); err == nil {
			s = c
		}
	}
	m := &mux{
		uc: s, r: bufio.NewReaderSize(s, 64<<10), token: make(chan struct{}, 1),
		pending: map[uint32]*pend{}, done: make(chan struct{}),
	}
	m.token <- struct{}{}
	return m
}

// pend is a request waiting for its reply frames (one, or several pages
// for List, or an endless stream for the subscription's id 0).
type pend struct {
	id     uint32
	sig    chan struct{} // capacity 1: a frame arrived or the request ended
	mu     sync.Mutex
	q      []frame
	closed bool
	gone   bool        // the caller stopped waiting
	orphan func(frame) // handles frames that arrive after that
}

func (p *pend) push(f frame) {
	p.mu.Lock()
	if p.gone {
		orphan := p.orphan
		p.mu.Unlock()
		if orphan != nil {
			go orphan(f)
		}
		return
	}
	p.q = append(p.q, f)
	p.mu.Unlock()
	p.signal()
}

func (p *pend) signal() {
	select {
	case p.sig <- struct{}{}:
	default:
	}
}

func (p *pend) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.signal()
}

// pop returns a queued frame (got), or reports that none will come.
func (p *pend) pop() (f frame, got, closed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.q) > 0 {
		f, p.q = p.q[0], p.q[1:]
		return f, true, false
	}
	return frame{}, false, p.closed
}

// abandon hands queued and future frames to orphan (may be nil).
func (p *pend) abandon(orphan func(frame)) {
	p.mu.Lock()
	p.gone, p.orphan = true, orphan
	q := p.q
	p.q = nil
	p.mu.Unlock()
	if orphan != nil {
		for _, f := range q {
			go orphan(f)
		}
	}
}

// start registers a request and sends it.
func (m *mux) start(t storewire.Type, payload []byte) (*pend, error) {
	return m.send(t, payload, nil)
}

// startFramed is start for a frame the caller encoded after HeaderSize
// bytes it left free: large requests are sent without another copy.
func (m *mux) startFramed(t storewire.Type, frame []byte) (*pend, error) {
	return m.send(t, nil, frame)
}

// send registers a request and sends payload, or frame (see startFramed)
// when it is not nil.
func (m *mux) send(t storewire.Type, payload, frame []byte) (*pend, error) {
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", t, m.err)
	}
	m.next++
	if m.next == 0 {
		m.next = 1
	}
	p := &pend{id: m.next, sig: make(chan struct{}, 1)}
	m.pending[p.id] = p
	m.mu.Unlock()

	m.wmu.Lock()
	if frame != nil {
		storewire.PutHeader(frame, storewire.Header{Length: uint32(len(frame) - storewire.HeaderSize), Type: uint16(t), ReqID: p.id})
	} else {
		m.wbuf = storewire.AppendFrame(m.wbuf[:0], t, p.id, payload)
		frame = m.wbuf
	}
	_, err := m.uc.Write(frame)
	if cap(m.wbuf) > keepBuffer {
		m.wbuf = nil // do not pin a large request's buffer (up to 64 MiB) for good
	}
	m.wmu.Unlock()
	if err != nil {
		m.fail(err)
		return nil, fmt.Errorf("send %s to store: %w", t, err)
	}
	return p, nil
}

// listen registers the receiver of pushed frames (request id 0).
func (m *mux) listen() *pend {
	p := &pend{sig: make(chan struct{}, 1)}
	m.mu.Lock()
	if m.err != nil {
		p.closed = true
	} else {
		m.pending[0] = p
	}
	m.mu.Unlock()
	return p
}

// recv waits for p's next frame; ok is false when the connection died.
// When ctx ends first, later frames go to orphan.
func (m *mux) recv(ctx context.Context, p *pend, orphan func(frame)) (f frame, ok bool, err error) {
	for {
		if f, got, closed := p.pop(); got || closed {
			return f, got, nil
		}
		select {
		case <-p.sig:
		case <-ctx.Done():
			p.abandon(orphan)
			return frame{}, false, ctx.Err()
		case <-m.token:
			m.readFor(ctx, p)
			m.token <- struct{}{}
		}
	}
}

// readFor reads and dispatches frames until p has one, the connection
// fails or ctx ends. Caller holds the token. Cancellation interrupts only
// the wait for a frame's header (a Peek, which consumes nothing), never a
// frame half read, so the stream stays in step for the next reader.
func (m *mux) readFor(ctx context.Context, p *pend) {
	var dmu sync.Mutex
	var inFrame, interrupted, finished bool
	stop := context.AfterFunc(ctx, func() {
		dmu.Lock()
		defer dmu.Unlock()
		if !inFrame && !finished {
			m.uc.SetReadDeadline(time.Unix(1, 0))
			interrupted = true
		}
	})
	defer func() {
		stop()
		dmu.Lock()
		finished = true
		if interrupted {
			m.uc.SetReadDeadline(time.Time{})
		}
		dmu.Unlock()
	}()
	for {
		p.mu.Lock()
		ready := len(p.q) > 0 || p.closed
		p.mu.Unlock()
		if ready || ctx.Err() != nil {
			return
		}
		if _, err := m.r.Peek(storewire.HeaderSize); err != nil {
			var ne net.Error
			if ctx.Err() != nil && errors.As(err, &ne) && ne.Timeout() {
				return
			}
			m.fail(err)
			return
		}
		dmu.Lock()
		inFrame = true
		if interrupted {
			m.uc.SetReadDeadline(time.Time{})
			interrupted = false
		}
		dmu.Unlock()
		h, payload, _, err := storewire.ReadFrame(m.r, nil, storewire.MaxReplyPayload)
		dmu.Lock()
		inFrame = false
		dmu.Unlock()
		if err != nil {
			m.fail(err)
			return
		}
		m.dispatch(h, payload)
	}
}

// dispatch hands a frame to the request it answers.
func (m *mux) dispatch(h storewire.Header, payload []byte) {
	m.mu.Lock()
	dst := m.pending[h.ReqID]
	// A List reply comes in pages: the request stays registered until the
	// last one (More=0). Id 0 (events) stays registered for good.
	t := storewire.Type(h.Type)
	more := t == storewire.TypeList|storewire.ReplyBit && len(payload) > 0 && payload[0] == 1
	if h.ReqID != 0 && !more {
		delete(m.pending, h.ReqID)
	}
	m.mu.Unlock()
	if dst != nil {
		dst.push(frame{t, payload})
	}
}

// fail marks the connection dead and ends every waiting request.
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
	for id, p := range m.pending {
		p.close()
		delete(m.pending, id)
	}
	close(m.done)
	m.uc.Close()
}

// call sends a request and waits for its single reply.
func (m *mux) call(ctx context.Context, t storewire.Type, payload []byte, orphan func(frame)) (frame, error) {
	p, err := m.start(t, payload)
	return m.reply(ctx, t, p, err, orphan)
}

// reply waits for the single reply of a request start sent.
func (m *mux) reply(ctx context.Context, t storewire.Type, p *pend, err error, orphan func(frame)) (frame, error) {
	if err != nil {
		return frame{}, err
	}
	f, ok, err := m.recv(ctx, p, orphan)
	if err != nil {
		return frame{}, fmt.Errorf("%s: %w", t, err)
	}
	return m.check(t, f, ok)
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
