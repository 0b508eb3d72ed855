package streamserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// Request memory. A request's payload is read only once its cost has been
// taken from the server-wide budget (--request-memory), and memory then
// grows only as its bytes arrive, in steps of at most readStep: a header
// announcing a huge frame costs nothing until the bytes come, and all the
// connections together never hold more than the budget of request bytes.
//
// SYNC and the id lists (COPY, TAKE, RELAY, DELETE) are decoded as they
// arrive (streamwire.ReadSync, ReadCopy); a SYNC costs 2.5 times its size
// (its ids, and the sorted index that finds duplicates among them). Other
// frames over freeFrame are read in readStep chunks and joined once whole,
// so they cost twice their size. Frames up to freeFrame cost nothing: they
// are bounded per connection, and PING, STAT and small requests must be
// answered even when the budget is spent.
const (
	readStep  = 1 << 20
	freeFrame = 64 << 10
)

// memBudget is the request memory left.
type memBudget struct {
	mu          sync.Mutex
	used, limit int64
}

// take reserves n bytes, or reports how much is in use when it cannot.
func (b *memBudget) take(n int64) (ok bool, used int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false, b.used
	}
	b.used += n
	return true, b.used
}

func (b *memBudget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

func (b *memBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// request is one request read from a connection. SYNC and id-list requests
// arrive decoded (sync, ids); the others as their payload.
type request struct {
	t    streamwire.Type
	p    []byte
	sync *streamwire.Sync
	ids  *streamwire.Copy
	cost int64 // budget held until done
}

// idsFrameMax is the largest legal id-list frame (65,536 ids): a longer
// one is refused after its count, so it never costs more.
const idsFrameMax = 4 + streamwire.IDSize*streamwire.MaxObjectsPerPeerRequest

// frameLimit is the most payload a request of type t may announce.
func frameLimit(t streamwire.Type) uint32 {
	switch t {
	case streamwire.TypeSync, streamwire.TypeCopy, streamwire.TypeTake:
		return streamwire.MaxFrame
	}
	return streamwire.MaxControlFrame
}

// cost is what a request of type t and n payload bytes takes from the
// budget.
func cost(t streamwire.Type, n uint32) int64 {
	switch {
	case n <= freeFrame:
		return 0
	case t == streamwire.TypeSync:
		return int64(n) * 5 / 2
	case isIDList(t):
		return min(int64(n), idsFrameMax)
	}
	return 2 * int64(n)
}

func isIDList(t streamwire.Type) bool {
	switch t {
	case streamwire.TypeCopy, streamwire.TypeTake, streamwire.TypeRelay, streamwire.TypeDeleteLocal:
		return true
	}
	return false
}

// refusal is a request refused before its payload was read; the
// connection cannot go on (the payload is still in the stream).
type refusal struct {
	t      streamwire.Type // the request's
	status streamwire.Status
	msg    string
	unread int64 // payload bytes still in the stream
}

// send answers the refused request with the frame its client reads first:
// a SyncDone for a SYNC, a CopyBegin for a COPY, TAKE or RELAY, else an
// Error.
func (r *refusal) send(c *transfer.Conn) error {
	switch r.t {
	case streamwire.TypeSync:
		return c.Send(streamwire.TypeSyncResult, streamwire.SyncDone{Status: r.status, Message: r.msg}.Append(nil))
	case streamwire.TypeCopy, streamwire.TypeTake, streamwire.TypeRelay:
		return c.Send(streamwire.TypeCopyBegin, streamwire.ErrorReply{Status: r.status, Message: r.msg}.Append(nil))
	}
	return c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: r.status, Message: r.msg}.Append(nil))
}

// refuseDrain is how long a refused request's payload is read and dropped
// after the answer, so that a client still sending it gets to read the
// answer (closing with unread bytes would reset the connection).
const refuseDrain = 2 * time.Second

// drain half-closes the connection and discards what remains of the
// refused payload, for at most refuseDrain; it holds no memory.
func (r *refusal) drain(c *transfer.Conn) {
	if tc, ok := c.NC.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	c.NC.SetReadDeadline(time.Now().Add(refuseDrain))
	io.CopyN(io.Discard, c.R, r.unread)
}

func (r *refusal) Error() string { return r.msg }

// readRequest waits up to idle for the next request's header and reads
// its payload within the request memory budget, each step of at most
// readStep under the connection's I/O timeout. The caller gives req.cost
// back to the budget when done with the request.
func (s *Server) readRequest(c *transfer.Conn, idle time.Duration) (request, error) {
	c.NC.SetReadDeadline(time.Now().Add(idle))
	var hb [wire.HeaderSize]byte
	if _, err := io.ReadFull(c.R, hb[:]); err != nil {
		return request{}, err
	}
	h, err := wire.ParseHeader(hb[:], ^uint32(0))
	if err != nil {
		return request{}, err
	}
	req := request{t: streamwire.Type(h.Type)}
	if max := frameLimit(req.t); h.Length > max {
		return req, fmt.Errorf("%w: %s frame of %d bytes, at most %d allowed", wire.ErrFrameTooLarge, req.t, h.Length, max)
	}
	req.cost = cost(req.t, h.Length)
	if ok, used := s.budget.take(req.cost); !ok {
		s.metrics.overBudget.Inc()
		req.cost = 0
		return req, &refusal{t: req.t, status: streamwire.StatusRequestTooLarge, msg: s.overBudget(req.t, h.Length, used), unread: int64(h.Length)}
	}
	r := &stepReader{c: c}
	switch {
	case req.t == streamwire.TypeSync:
		req.sync, err = streamwire.ReadSync(r, h.Length)
	case isIDList(req.t):
		req.ids, err = streamwire.ReadCopy(r, h.Length)
	default:
		req.p, err = readChunked(r, h.Length)
	}
	if err != nil {
		s.budget.give(req.cost)
		req.cost = 0
		if le, ok := streamwire.IsLimit(err); ok {
			return req, &refusal{t: req.t, status: le.Status, msg: fmt.Sprintf("%s rejected: %s", req.t, le.Message), unread: int64(h.Length) - r.read}
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	return req, err
}

// overBudget says why a request does not fit in the request memory.
func (s *Server) overBudget(t streamwire.Type, n uint32, used int64) string {
	need, limit := cost(t, n), s.cfg.RequestMemory
	if need > limit {
		return fmt.Sprintf("%s: a %s of %s needs %s of request memory, more than the %s the server allows (--request-memory): send smaller requests or raise --request-memory",
			s.cfg.NodeName, t, cliutil.FormatBytes(float64(n)), cliutil.FormatBytes(float64(need)), cliutil.FormatBytes(float64(limit)))
	}
	return fmt.Sprintf("%s: a %s of %s needs %s of request memory, but %s of the %s the server allows (--request-memory) is held by other requests: try again later, send smaller requests or raise --request-memory",
		s.cfg.NodeName, t, cliutil.FormatBytes(float64(n)), cliutil.FormatBytes(float64(need)), cliutil.FormatBytes(float64(used)), cliutil.FormatBytes(float64(limit)))
}

// readChunked reads n bytes in chunks allocated as they are about to be
// filled, then joins them: never more memory than the bytes that came
// (twice that at the join), and no doubling.
func readChunked(r io.Reader, n uint32) ([]byte, error) {
	if n <= readStep {
		p := make([]byte, n)
		_, err := io.ReadFull(r, p)
		return p, err
	}
	var chunks [][]byte
	for left := int(n); left > 0; {
		chunk := make([]byte, min(left, readStep))
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

// stepReader reads from the connection with a fresh deadline for every
// readStep bytes.
type stepReader struct {
	c    *transfer.Conn
	left int   // bytes still allowed under the current deadline
	read int64 // bytes read in all
}

func (r *stepReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		r.c.NC.SetReadDeadline(time.Now().Add(r.c.Timeout))
		r.left = readStep
	}
	if len(p) > r.left {
		p = p[:r.left]
	}
	n, err := r.c.R.Read(p)
	r.left -= n
	r.read += int64(n)
	return n, err
}

// isRefusal reports whether err is a request refused before its payload.
func isRefusal(err error) (*refusal, bool) {
	var r *refusal
	ok := errors.As(err, &r)
	return r, ok
}
