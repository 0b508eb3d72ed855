package streamserver

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// Request memory. A request's payload is read only once its cost has been
// taken from the server-wide budget (--request-memory), and memory then
// grows only as its bytes arrive (transfer.ReadChunked, StepReader): a header
// announcing a huge frame costs nothing until the bytes come, and all the
// connections together never hold more than the budget of request bytes.
//
// SYNC and the id lists (COPY, TAKE, RELAY, DELETE) are decoded as they
// arrive (streamwire.ReadSync, ReadCopy); a SYNC costs 2.5 times its size
// (its ids, and the sorted index that finds duplicates among them). Other
// frames over freeFrame are read in 1 MiB chunks and joined once whole,
// so they cost twice their size. Frames up to freeFrame cost nothing: they
// are bounded per connection, and PING, STAT and small requests must be
// answered even when the budget is spent.
const freeFrame = 64 << 10

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
func (r *refusal) drain(c *transfer.Conn) { c.DrainRefused(r.unread, refuseDrain) }

func (r *refusal) Error() string { return r.msg }

// readRequest waits up to idle for the next request's header and reads
// its payload within the request memory budget, each step of at most
// readStep under the connection's I/O timeout. The caller gives req.cost
// back to the budget when done with the request.
func (s *Server) readRequest(c *transfer.Conn, idle time.Duration) (request, error) {
	h, err := c.ReadHeader(idle)
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
	r := c.StepReader()
	switch {
	case req.t == streamwire.TypeSync:
		req.sync, err = streamwire.ReadSync(r, h.Length)
	case isIDList(req.t):
		req.ids, err = streamwire.ReadCopy(r, h.Length)
	default:
		req.p, err = transfer.ReadChunked(r, h.Length)
	}
	if err != nil {
		s.budget.give(req.cost)
		req.cost = 0
		if le, ok := streamwire.IsLimit(err); ok {
			return req, &refusal{t: req.t, status: le.Status, msg: fmt.Sprintf("%s rejected: %s", req.t, le.Message), unread: int64(h.Length) - r.Count()}
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

// isRefusal reports whether err is a request refused before its payload.
func isRefusal(err error) (*refusal, bool) {
	var r *refusal
	ok := errors.As(err, &r)
	return r, ok
}
