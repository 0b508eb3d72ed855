package netutil

import (
	"sync"
	"time"
)

// Sometimes runs a logging function at most once per Interval (10 s when
// zero) and counts the calls it skipped, so that a condition repeating
// thousands of times a second (accept failing, clients refused) costs one
// log line a while. The zero value is ready; it is safe for concurrent use.
type Sometimes struct {
	Interval time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Do calls f with the number of calls skipped since f last ran, unless f
// ran less than Interval ago.
func (l *Sometimes) Do(f func(suppressed int)) {
	every := l.Interval
	if every == 0 {
		every = 10 * time.Second
	}
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	f(n)
}
