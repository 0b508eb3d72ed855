package testutil

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/netutil"
)

// Proxy is a TCP proxy for fault injection between two stream servers: it
// can flip one byte of the server-to-client direction, stall that
// direction after some bytes, or cut the connection there.
type Proxy struct {
	Addr string

	// Set before traffic flows; offsets count server-to-client bytes of
	// each connection.
	FlipAt  int64 // flip the byte at this offset (-1: never)
	StallAt int64 // stop forwarding at this offset until Resume (-1: never)
	CutAt   int64 // close both sides at this offset (-1: never)
	// CutTotalAt closes every connection once this many server-to-client
	// bytes have passed, counting all connections together (-1: never);
	// later connections pass.
	CutTotalAt int64
	// StallTotalAt stops forwarding on every connection once this many
	// server-to-client bytes have passed, counting all connections
	// together, until Resume (-1: never). Unlike StallAt it bounds what
	// all clients of the server can have received together.
	StallTotalAt int64
	// MaxConns, if positive, is how many connections are forwarded; later
	// ones are closed at once, as if the server behind had died.
	MaxConns int
	// Rate, if positive, throttles each connection's server-to-client
	// bytes to about this many a second (a slow link to watch).
	Rate int64

	mu         sync.Mutex
	total      int64
	stallTotal int64
	conns      int
	killed     bool
	dialed     func() // for this package's tests: runs between the dial and the registration
	cut        bool
	open       map[net.Conn]bool
	target     string // where connections go (SetTarget)

	stalled   chan struct{} // closed when a connection reaches StallAt or StallTotalAt
	resume    chan struct{}
	once      sync.Once
	stallOnce sync.Once
	ln        net.Listener
	wg        sync.WaitGroup
}

// StartProxy forwards connections on a new local port to target. Faults
// set by configure are in place before the first connection.
func StartProxy(t testing.TB, target string, configure ...func(*Proxy)) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), FlipAt: -1, StallAt: -1, CutAt: -1, CutTotalAt: -1, StallTotalAt: -1, open: map[net.Conn]bool{},
		stalled: make(chan struct{}), resume: make(chan struct{}), ln: ln}
	for _, f := range configure {
		f(p)
	}
	p.target = target
	go p.accept()
	t.Cleanup(func() { p.Resume(); ln.Close(); p.wg.Wait() })
	return p
}

// String tells what passed: for a failing test's log.
func (p *Proxy) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("proxy %s: %d connections, %d bytes counted toward StallTotalAt", p.Addr, p.conns, p.stallTotal)
}

// Stalled is closed once a connection has stalled at StallAt.
func (p *Proxy) Stalled() <-chan struct{} { return p.stalled }

// Resume lets stalled connections go on.
func (p *Proxy) Resume() { p.once.Do(func() { close(p.resume) }) }

// SetTarget sends later connections to addr: for a proxy started before
// the server it fronts (one the server advertises as its address).
func (p *Proxy) SetTarget(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = addr
}

func (p *Proxy) accept() {
	var backoff netutil.AcceptBackoff
	for n := 1; ; n++ {
		c, err := p.ln.Accept()
		if err != nil {
			if backoff.Retry(context.Background(), err, nil) { // out of descriptors: wait, go on
				n--
				continue
			}
			return // closed
		}
		backoff.Reset()
		if p.MaxConns > 0 && n > p.MaxConns {
			c.Close()
			continue
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		if p.dialed != nil {
			p.dialed()
		}
		p.mu.Lock()
		if p.killed { // accepted before Kill closed the listener, dialled after
			p.mu.Unlock()
			c.Close()
			s.Close()
			continue
		}
		p.open[c], p.open[s] = true, true
		p.conns++
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
		go func() { defer p.wg.Done(); p.pump(c, s); c.Close(); s.Close() }()
	}
}

// pump copies server to client, applying the faults.
func (p *Proxy) pump(dst, src net.Conn) {
	buf := make([]byte, 64<<10)
	if p.Rate > 0 {
		buf = buf[:max(1, min(len(buf), int(p.Rate/20)))] // some twenty writes a second
	}
	var off int64
	stalledHere := false
	start := time.Now()
	for {
		n, err := src.Read(buf)
		if p.Rate > 0 {
			// Forward n more bytes no sooner than the rate allows.
			time.Sleep(time.Until(start.Add(time.Duration(float64(off+int64(n)) / float64(p.Rate) * float64(time.Second)))))
		}
		for i := 0; i < n; i++ {
			pos := off + int64(i)
			if pos == p.FlipAt {
				buf[i] ^= 0x55
			}
		}
		chunk := buf[:n]
		if p.CutTotalAt >= 0 && !p.passTotal(dst, chunk) {
			return
		}
		if p.StallTotalAt >= 0 {
			if k := p.takeTotal(int64(n)); k < int64(n) {
				dst.Write(chunk[:k])
				p.stallOnce.Do(func() { close(p.stalled) })
				<-p.resume
				chunk = chunk[k:]
			}
		}
		if p.CutAt >= 0 && off+int64(n) > p.CutAt {
			dst.Write(chunk[:p.CutAt-off])
			return
		}
		if p.StallAt >= 0 && !stalledHere && off+int64(n) > p.StallAt {
			k := p.StallAt - off
			dst.Write(chunk[:k])
			stalledHere = true
			p.stallOnce.Do(func() { close(p.stalled) })
			<-p.resume
			chunk = chunk[k:]
		}
		if _, werr := dst.Write(chunk); werr != nil {
			return
		}
		off += int64(n)
		if err != nil {
			return
		}
	}
}

// takeTotal takes up to n bytes from the StallTotalAt budget and reports
// how many it took; after Resume the budget no longer applies.
func (p *Proxy) takeTotal(n int64) int64 {
	select {
	case <-p.resume:
		return n
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := min(n, p.StallTotalAt-p.stallTotal)
	p.stallTotal += k
	return k
}

// passTotal forwards chunk within the CutTotalAt budget; when the budget
// runs out it closes every connection open so far and reports false.
func (p *Proxy) passTotal(dst net.Conn, chunk []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return true
	}
	if p.total+int64(len(chunk)) <= p.CutTotalAt {
		p.total += int64(len(chunk))
		return true
	}
	dst.Write(chunk[:p.CutTotalAt-p.total])
	p.total, p.cut = p.CutTotalAt, true
	for c := range p.open {
		c.Close()
	}
	return false
}
