package streamserver_test

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/testnode"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/stream"
)

// remoteAs is a listener whose connections report addr as their peer:
// a non-loopback peer on a machine whose only address is loopback.
type remoteAs struct {
	net.Listener
	addr net.Addr
}

func (l remoteAs) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c, l.addr}, nil
}

type remoteConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.remote }

// nonLoopback is an address of this machine other than loopback, or nil.
func nonLoopback(t *testing.T) net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP
		}
	}
	return nil
}

// protectedCase starts a server with --bind left at its default and
// returns the address a non-loopback peer dials and a loopback one.
type protectedCase struct {
	name  string
	start func(t *testing.T, allow bool) (remote, local string)
}

func protectedCases(t *testing.T) []protectedCase {
	// Without a non-loopback address, a wrapped listener makes loopback
	// connections look as if they came from 192.0.2.77 (TEST-NET-1).
	cases := []protectedCase{{"wrapped listener", func(t *testing.T, allow bool) (string, string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n := testnode.Start(t, "p", 1<<20, func(c *streamserver.Config) {
			c.Bind, c.AllowUnauthenticated = "", allow
			c.Listener = remoteAs{ln, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 77), Port: 40000}}
		})
		return n.Addr, ""
	}}}
	if ip := nonLoopback(t); ip != nil {
		cases = append(cases, protectedCase{"address " + ip.String(), func(t *testing.T, allow bool) (string, string) {
			n := testnode.Start(t, "p", 1<<20, func(c *streamserver.Config) { c.Bind, c.AllowUnauthenticated = "", allow })
			_, port, _ := net.SplitHostPort(n.Addr)
			return net.JoinHostPort(ip.String(), port), net.JoinHostPort("127.0.0.1", port)
		}})
	}
	return cases
}

// A server without keys and with --bind at its default serves loopback
// peers only: another peer gets an Error NotPermitted saying what to do;
// with --allow-unauthenticated it is served.
func TestProtectedMode(t *testing.T) {
	for _, tc := range protectedCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			remote, local := tc.start(t, false)
			_, err := stream.Connect(bg, remote)
			if !stream.IsStatus(err, stream.StatusNotPermitted) || !strings.Contains(err.Error(), "--allow-unauthenticated") {
				t.Fatalf("non-loopback peer of a protected server: %v", err)
			}
			if local != "" {
				if _, err := client(t, local).Ping(bg); err != nil {
					t.Fatalf("loopback peer of a protected server: %v", err)
				}
			}
			remote, _ = tc.start(t, true)
			if _, err := client(t, remote).Ping(bg); err != nil {
				t.Fatalf("non-loopback peer with --allow-unauthenticated: %v", err)
			}
		})
	}
}

// A server without keys says so at start, in one warn line.
func TestNoKeyWarning(t *testing.T) {
	var logs testutil.Buffer
	testnode.Start(t, "w", 1<<20, func(c *streamserver.Config) {
		c.Bind = ""
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "can read, take and delete its objects") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about the missing key:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if lines := strings.Count(strings.TrimSpace(logs.String()), "\n") + 1; lines != 1 || !strings.Contains(logs.String(), "loopback peers only") {
		t.Fatalf("want one warn line saying only loopback peers are served:\n%s", logs.String())
	}
}
