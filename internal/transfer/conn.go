package transfer

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/tracing"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// DefaultTimeout is the deadline of one network step.
const DefaultTimeout = 30 * time.Second

// Conn is a stream protocol connection with per-step deadlines. Its socket
// and buffers are reachable only through its methods, each of which sets
// the deadline of every read and write it makes.
type Conn struct {
	nc      net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	Timeout time.Duration
	Peer    string // the remote address, for errors
}

// NewConn wraps nc.
func NewConn(nc net.Conn, timeout time.Duration) *Conn {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Conn{nc: nc, r: bufio.NewReaderSize(nc, 256<<10), w: bufio.NewWriterSize(nc, 256<<10),
		Timeout: timeout, Peer: nc.RemoteAddr().String()}
}

// ReadFrame reads one frame of at most max payload bytes.
func (c *Conn) ReadFrame(max uint32) (streamwire.Type, []byte, error) {
	var deadline time.Time
	if c.r.Buffered() < wire.HeaderSize { // else readHeader sets none
		deadline = time.Now().Add(c.Timeout)
	}
	return c.readFrame(deadline, max)
}

// Buffered is the number of bytes received and not read yet: reads of up
// to that many wait for nothing.
func (c *Conn) Buffered() int { return c.r.Buffered() }

// readFrame reads a header by headerDeadline (zero: none) and a payload of
// at most max bytes in steps, each with its own deadline. Memory
// grows with the bytes that actually arrive, so a header announcing a
// huge frame costs nothing until the peer sends it.
func (c *Conn) readFrame(headerDeadline time.Time, max uint32) (streamwire.Type, []byte, error) {
	h, err := c.readHeader(headerDeadline)
	if err != nil {
		return 0, nil, err
	}
	t := streamwire.Type(h.Type)
	if h.Length > max {
		return t, nil, fmt.Errorf("%w: %s frame of %d bytes, at most %d allowed", wire.ErrFrameTooLarge, t, h.Length, max)
	}
	p, err := ReadChunked(c.StepReader(), h.Length)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return t, nil, err
	}
	return t, p, nil
}

// Expect reads a frame that must be of type want and decodes it into m; an
// ErrorReply in its place is returned as the error.
func (c *Conn) Expect(want streamwire.Type, m interface{ Decode([]byte) error }) error {
	t, p, err := c.ReadFrame(streamwire.MaxControlFrame)
	if err != nil {
		return err
	}
	return c.decodeReply(t, p, want, m)
}

func (c *Conn) decodeReply(t streamwire.Type, p []byte, want streamwire.Type, m interface{ Decode([]byte) error }) error {
	if t == streamwire.TypeError && want != streamwire.TypeError {
		var e streamwire.ErrorReply
		if err := e.Decode(p); err != nil {
			return &ProtocolError{Msg: fmt.Sprintf("undecodable error reply: %v", err)}
		}
		return &e
	}
	if t != want {
		return &ProtocolError{Msg: fmt.Sprintf("got %s, want %s", t, want)}
	}
	if err := m.Decode(p); err != nil {
		return &ProtocolError{Msg: fmt.Sprintf("%s: %v", t, err)}
	}
	return nil
}

// ExpectSlow is Expect for replies whose work has no bound the client
// knows (a cluster FETCH or PREFETCH): it waits for the reply's header
// without a deadline — the caller's context ends the wait (CloseOnDone) —
// and reads the rest with the usual ones.
func (c *Conn) ExpectSlow(want streamwire.Type, m interface{ Decode([]byte) error }) error {
	return c.ExpectSlowProgress(want, m, nil)
}

// ExpectSlowProgress is ExpectSlow for a request sent after a
// WANT-PROGRESS frame: the PROGRESS frames before the reply go to
// progress (which may be nil: they are then skipped).
func (c *Conn) ExpectSlowProgress(want streamwire.Type, m interface{ Decode([]byte) error }, progress func(streamwire.Progress)) error {
	for {
		t, p, err := c.readFrame(time.Time{}, streamwire.MaxControlFrame)
		if err != nil {
			return err
		}
		if t == streamwire.TypeProgress && want != streamwire.TypeProgress {
			var pr streamwire.Progress
			if err := pr.Decode(p); err != nil {
				return &ProtocolError{Msg: err.Error()}
			}
			if progress != nil {
				progress(pr)
			}
			continue
		}
		return c.decodeReply(t, p, want, m)
	}
}

// Propagate buffers a TRACE frame with ctx's trace context, to go with
// the request sent next (nothing when tracing is off or ctx has no
// span): the server continues the trace (internal/tracing).
func (c *Conn) Propagate(ctx context.Context) error {
	if p := tracing.Parent(ctx); p != nil {
		return c.WriteFrame(streamwire.TypeTrace, p)
	}
	return nil
}

// WriteFrame buffers one frame.
func (c *Conn) WriteFrame(t streamwire.Type, payload []byte) error {
	if c.w.Available() < wire.HeaderSize+len(payload) { // else nothing is sent now
		c.nc.SetWriteDeadline(time.Now().Add(c.Timeout))
	}
	var hb [wire.HeaderSize]byte
	wire.PutHeader(hb[:], wire.Header{Length: uint32(len(payload)), Type: uint16(t)})
	if _, err := c.w.Write(hb[:]); err != nil {
		return err
	}
	_, err := c.w.Write(payload)
	return err
}

// Flush sends what is buffered.
func (c *Conn) Flush() error {
	c.nc.SetWriteDeadline(time.Now().Add(c.Timeout))
	return c.w.Flush()
}

// Send writes one frame and flushes.
func (c *Conn) Send(t streamwire.Type, payload []byte) error {
	if err := c.WriteFrame(t, payload); err != nil {
		return err
	}
	return c.Flush()
}

// ReadFull reads len(b) raw bytes in steps, each with its own deadline,
// calling progress after each step.
func (c *Conn) ReadFull(b []byte, progress func(int)) error {
	for len(b) > 0 {
		n := min(len(b), stepSize)
		if c.r.Buffered() < n {
			c.nc.SetReadDeadline(time.Now().Add(c.Timeout))
		}
		if _, err := io.ReadFull(c.r, b[:n]); err != nil {
			return err
		}
		if progress != nil {
			progress(n)
		}
		b = b[n:]
	}
	return nil
}

// ReadSome reads what has arrived into b, at least one byte, waiting up to
// the step deadline.
func (c *Conn) ReadSome(b []byte) (int, error) {
	c.nc.SetReadDeadline(time.Now().Add(c.Timeout))
	return c.r.Read(b)
}

// Discard reads and drops n bytes, in steps with their own deadlines.
func (c *Conn) Discard(n int64) error {
	for n > 0 {
		step := min(n, stepSize)
		c.nc.SetReadDeadline(time.Now().Add(c.Timeout))
		if _, err := c.r.Discard(int(step)); err != nil {
			return err
		}
		n -= step
	}
	return nil
}

// Write buffers bufs, under one deadline per step of stepSize bytes.
func (c *Conn) Write(bufs ...[]byte) error {
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	if total <= c.w.Available() { // all fits the buffer: nothing is sent now
		for _, b := range bufs {
			if _, err := c.w.Write(b); err != nil { // an earlier failure
				return err
			}
		}
		return nil
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.Timeout))
	step := 0
	for _, b := range bufs {
		for len(b) > 0 {
			if step == stepSize {
				c.nc.SetWriteDeadline(time.Now().Add(c.Timeout))
				step = 0
			}
			n := min(len(b), stepSize-step)
			if _, err := c.w.Write(b[:n]); err != nil {
				return err
			}
			b, step = b[n:], step+n
		}
	}
	return nil
}

// WriteDirect sends what is buffered, then b straight to the socket (no
// copy through the buffer), in steps with their own deadlines.
func (c *Conn) WriteDirect(b []byte) error {
	if err := c.Flush(); err != nil {
		return err
	}
	for len(b) > 0 {
		n := min(len(b), stepSize)
		c.nc.SetWriteDeadline(time.Now().Add(c.Timeout))
		if _, err := c.nc.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// BoundPendingRead gives a read already waiting without a deadline (the
// acknowledgements a sender awaits while it sends) the usual one.
func (c *Conn) BoundPendingRead() { c.nc.SetReadDeadline(time.Now().Add(c.Timeout)) }

// PeekIdle waits, without a deadline, until the peer sends a byte (which
// stays unread) or goes away; Interrupt ends the wait early with a timeout
// error. It is for watching a peer that must stay silent meanwhile.
func (c *Conn) PeekIdle() error {
	c.nc.SetReadDeadline(time.Time{})
	_, err := c.r.Peek(1)
	return err
}

// Interrupt makes a read in progress (PeekIdle) return at once with a
// timeout error; later reads set their own deadlines.
func (c *Conn) Interrupt() { c.nc.SetReadDeadline(time.Unix(1, 0)) }

// ReadHeader waits up to idle (0: without a deadline) for the next
// frame's header.
func (c *Conn) ReadHeader(idle time.Duration) (wire.Header, error) {
	var deadline time.Time
	if idle > 0 {
		deadline = time.Now().Add(idle)
	}
	return c.readHeader(deadline)
}

// readHeader reads a frame header by deadline (zero: none).
func (c *Conn) readHeader(deadline time.Time) (wire.Header, error) {
	// A read served from the buffer needs no deadline (setting one costs
	// a clock read and a timer update: per small object, that showed).
	if c.r.Buffered() < wire.HeaderSize {
		c.nc.SetReadDeadline(deadline)
	}
	var hb [wire.HeaderSize]byte
	if _, err := io.ReadFull(c.r, hb[:]); err != nil {
		return wire.Header{}, err
	}
	return wire.ParseHeader(hb[:], ^uint32(0))
}

// StepReader reads the connection with a fresh deadline for every step of
// stepSize bytes, for decoders that read a payload as it arrives.
func (c *Conn) StepReader() *StepReader { return &StepReader{c: c} }

// StepReader is an io.Reader over a Conn that keeps its deadlines.
type StepReader struct {
	c     *Conn
	left  int   // bytes still allowed under the current deadline
	count int64 // bytes read in all
}

func (r *StepReader) Read(p []byte) (int, error) {
	if r.c.r.Buffered() > 0 {
		// Served from the buffer: no network read, no deadline needed.
		n, err := r.c.r.Read(p)
		r.count += int64(n)
		return n, err
	}
	if r.left <= 0 {
		r.c.nc.SetReadDeadline(time.Now().Add(r.c.Timeout))
		r.left = stepSize
	}
	if len(p) > r.left {
		p = p[:r.left]
	}
	n, err := r.c.r.Read(p)
	r.left -= n
	r.count += int64(n)
	return n, err
}

// Count is the number of bytes read so far.
func (r *StepReader) Count() int64 { return r.count }

// ReadChunked reads n bytes in chunks allocated as they are about to be
// filled, then joins them: a header announcing a large payload costs
// nothing until its bytes arrive, memory never exceeds what came (twice
// that at the join), and nothing grows by doubling.
func ReadChunked(r io.Reader, n uint32) ([]byte, error) {
	const chunkSize = 1 << 20
	if n <= chunkSize {
		p := make([]byte, n)
		_, err := io.ReadFull(r, p)
		return p, err
	}
	var chunks [][]byte
	for left := int(n); left > 0; {
		chunk := make([]byte, min(left, chunkSize))
		if _, err := io.ReadFull(r, chunk); err != nil {
			return nil, err
		}
		chunks = append(chunks, chunk)
		left -= len(chunk)
	}
	p := make([]byte, 0, n)
	for i := range chunks {
		p = append(p, chunks[i]...)
		chunks[i] = nil
	}
	return p, nil
}

// DrainRefused half-closes the connection and reads and drops up to n
// bytes the peer is still sending, for at most d: a peer whose request was
// refused then reads the answer instead of a reset (closing with unread
// bytes resets the connection). It holds no memory.
func (c *Conn) DrainRefused(n int64, d time.Duration) {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(d))
	io.CopyN(io.Discard, c.r, n)
}

// stepSize is the most bytes moved under one deadline: at the default
// 30 s deadline a peer slower than ~140 KB/s is dropped.
const stepSize = 4 << 20

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// CloseOnDone closes the connection when ctx ends, unblocking any read or
// write; call the returned function to stop watching.
func (c *Conn) CloseOnDone(ctx context.Context) func() bool {
	return context.AfterFunc(ctx, func() { c.nc.Close() })
}

// ProtocolError is a peer that broke the protocol.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "protocol error: " + e.Msg }

// Hello performs the client side of the handshake.
func Hello(c *Conn, role streamwire.Role, name string) (streamwire.HelloReply, error) {
	var hr streamwire.HelloReply
	h := streamwire.Hello{Version: streamwire.Version, Role: role, Name: name}
	copy(h.Magic[:], streamwire.Magic)
	if err := c.Send(streamwire.TypeHello, h.Append(nil)); err != nil {
		return hr, err
	}
	err := c.Expect(streamwire.TypeHello|streamwire.ReplyBit, &hr)
	return hr, notOurProtocol(err)
}

// ErrNotPlasma is a peer whose answer to HELLO is not a frame of this
// protocol (another service on that port). Its message is fixed: a SYNC
// names any host:port, and a reply that quoted what came back (a frame
// type, flags or length read from another service's banner) would let
// whoever can send a SYNC read bytes of services the node can reach.
var ErrNotPlasma = &ProtocolError{Msg: "the peer did not answer as a plasma stream server"}

// notOurProtocol replaces an error made from the bytes of a peer's
// answer to HELLO by ErrNotPlasma. A refusal in our protocol (an
// ErrorReply) and network errors (end of stream, reset, deadline: net.Error
// covers *net.OpError), which carry none of the peer's bytes, pass
// unchanged.
func notOurProtocol(err error) error {
	var er *streamwire.ErrorReply
	var ne net.Error
	switch {
	case err == nil, errors.As(err, &er), errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, context.Canceled):
		return err
	}
	return ErrNotPlasma
}

// Dial connects to a stream server and performs the handshake. With
// tlsCfg (trust.TLSConfig: this node's certificate, the peer's key pinned)
// a TLS 1.3 handshake comes first, before any protocol byte; a peer that
// does not complete it fails with a *HandshakeError.
func Dial(ctx context.Context, addr string, role streamwire.Role, name string, timeout time.Duration, tlsCfg *tls.Config) (*Conn, streamwire.HelloReply, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	d := net.Dialer{Timeout: min(timeout, 10*time.Second), KeepAlive: 15 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, streamwire.HelloReply{}, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if tlsCfg != nil {
		tc := tls.Client(nc, tlsCfg)
		tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, streamwire.HelloReply{}, &HandshakeError{Addr: addr, Err: err}
		}
		tc.SetDeadline(time.Time{})
		nc = tc
	}
	c := NewConn(nc, timeout)
	stop := c.CloseOnDone(ctx)
	defer stop()
	hr, err := Hello(c, role, name)
	if err != nil {
		nc.Close()
		return nil, hr, err
	}
	return c, hr, nil
}

// HandshakeError is a peer that did not complete a TLS handshake proving
// a trusted key. Its message says which kind of failure it was but never
// echoes what the peer sent (a SYNC's reply must not turn the server into
// a scanner of other services); Err holds the detail, for logs.
type HandshakeError struct {
	Addr string
	Err  error
}

func (e *HandshakeError) Error() string {
	var rh tls.RecordHeaderError
	var te interface{ Timeout() bool }
	why := "it does not prove a trusted key"
	switch {
	case errors.As(e.Err, &rh):
		why = "it does not speak TLS"
	case errors.As(e.Err, &te) && te.Timeout():
		why = "it did not complete the handshake in time"
	case errors.Is(e.Err, context.Canceled):
		why = "cancelled"
	}
	return fmt.Sprintf("TLS handshake with %s failed: %s (a peer must be a plasma node whose key this one trusts)", e.Addr, why)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// UntrustedPeerError is how a node with keys reports, to whoever asked it
// to dial an address (a SYNC names any host:port), any failure before
// the peer proved a trusted key: no route, a closed port, a service that
// does not speak TLS, a TLS server with another key all read the same, so
// the node cannot be used to tell open ports from closed ones. Err holds
// the detail, for the node's own log only.
type UntrustedPeerError struct {
	Addr string
	Err  error
}

func (e *UntrustedPeerError) Error() string {
	return "not a reachable plasma node whose key this node trusts (the node's log says why)"
}

func (e *UntrustedPeerError) Unwrap() error { return e.Err }

// DialNode is Dial for a node dialling another one on behalf of a caller
// (a SYNC's or a PULL's peers, a fetch's holders, the targets of a
// prefetch or a delete). With keys (tlsCfg set), a failure before the peer
// proved a trusted key is logged to log with its reason and returned as
// an *UntrustedPeerError, so the caller's reply tells nothing about what
// listens at addr.
func DialNode(ctx context.Context, addr string, role streamwire.Role, name string, timeout time.Duration, tlsCfg *tls.Config, log *slog.Logger) (*Conn, error) {
	c, _, err := Dial(ctx, addr, role, name, timeout, tlsCfg)
	if err != nil && tlsCfg != nil && ctx.Err() == nil {
		log.Info("peer did not prove a trusted key", "peer", addr, "err", err)
		err = &UntrustedPeerError{Addr: addr, Err: err}
	}
	return c, err
}
