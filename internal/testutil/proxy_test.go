package testutil

import (
	"io"
	"net"
	"testing"
	"time"
)

// A connection accepted before Kill whose dial to the target ends after
// it gets nothing from the target: it is closed, as every other.
func TestProxyKillClosesConnectionDialledMeanwhile(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("from the target"))
			defer c.Close()
		}
	}()
	// The proxy dies while this connection's dial is under way.
	p := StartProxy(t, target.Addr().String(), func(p *Proxy) { p.dialed = p.Kill })
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if len(b) != 0 || err != nil {
		t.Fatalf("read %q (%v) through a killed proxy, want nothing and EOF", b, err)
	}
}
