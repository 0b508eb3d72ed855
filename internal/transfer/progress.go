package transfer

import (
	"context"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
)

// ProgressSink hears how the transfers of one request advance (a FETCH or
// PULL whose client asked for progress with a WANT-PROGRESS frame): the
// bytes of each object as they are verified, each object's size as it
// becomes known, and each object finished. It sends a PROGRESS frame at
// most every interval. Its methods are safe for concurrent use and do
// nothing on a nil sink.
type ProgressSink struct {
	mu       sync.Mutex
	p        streamwire.Progress
	last     time.Time
	interval time.Duration
	send     func([]byte) error
	broken   bool // a send failed: the reply will fail too; stop trying
}

// NewProgressSink reports on c every interval, for a request of objects
// objects. The request's handler must not write on c until the transfers
// reporting to the sink have ended (their reply comes after them).
func NewProgressSink(c *Conn, objects int, interval time.Duration) *ProgressSink {
	return &ProgressSink{p: streamwire.Progress{ObjectsTotal: uint32(objects)}, interval: interval, last: time.Now(),
		send: func(b []byte) error { return c.Send(streamwire.TypeProgress, b) }}
}

type sinkKey struct{}

// WithSink makes ctx carry s to the transfers run under it.
func WithSink(ctx context.Context, s *ProgressSink) context.Context {
	return context.WithValue(ctx, sinkKey{}, s)
}

// SinkFrom is the sink ctx carries, or nil.
func SinkFrom(ctx context.Context) *ProgressSink {
	s, _ := ctx.Value(sinkKey{}).(*ProgressSink)
	return s
}

// Bytes counts n bytes received and verified.
func (s *ProgressSink) Bytes(n int64) {
	s.update(func(p *streamwire.Progress) { p.BytesDone += uint64(n) })
}

// Announce counts the size of an object whose transfer began.
func (s *ProgressSink) Announce(n int64) {
	s.update(func(p *streamwire.Progress) { p.BytesTotal += uint64(n) })
}

// Object counts an object finished, whatever its outcome.
func (s *ProgressSink) Object() { s.update(func(p *streamwire.Progress) { p.ObjectsDone++ }) }

func (s *ProgressSink) update(f func(*streamwire.Progress)) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.p)
	if s.broken || time.Since(s.last) < s.interval {
		return
	}
	s.last = time.Now()
	if s.send(s.p.Append(nil)) != nil {
		s.broken = true
	}
}
