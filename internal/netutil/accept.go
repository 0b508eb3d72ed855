package netutil

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"
)

// Accept backoff bounds: the first retry after a failed Accept waits
// AcceptRetryMin, each further one twice as long, up to AcceptRetryMax.
const (
	AcceptRetryMin = 5 * time.Millisecond
	AcceptRetryMax = time.Second
)

// AcceptBackoff keeps an accept loop alive through transient failures
// (EMFILE and ENFILE when file descriptors run out, ENOBUFS, ECONNABORTED):
// a failed Accept waits, doubling from 5 ms to 1 s, and is logged at most
// once per 10 s with the count of failures in between. Only a closed
// listener (or the end of ctx) ends the loop. The zero value is ready.
type AcceptBackoff struct {
	delay time.Duration
	log   Sometimes
}

// Retry handles an Accept error: it reports false when the loop must end
// (the listener is closed or ctx is done), else waits and reports true.
// log may be nil.
func (b *AcceptBackoff) Retry(ctx context.Context, err error, log *slog.Logger) bool {
	if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
		return false
	}
	b.delay = min(max(2*b.delay, AcceptRetryMin), AcceptRetryMax)
	if log != nil {
		b.log.Do(func(suppressed int) {
			log.Warn("accept failed; retrying (out of file descriptors? raise ulimit -n)",
				"err", err, "retry_in", b.delay, "failures_not_logged", suppressed)
		})
	}
	t := time.NewTimer(b.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Reset is called after a successful Accept.
func (b *AcceptBackoff) Reset() { b.delay = 0 }
