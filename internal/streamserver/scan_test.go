package streamserver_test

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/testnode"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/stream"
)

// service listens on loopback like another program would: it writes
// banner (after reading what arrives first, when readFirst) and hangs up.
func service(t *testing.T, banner []byte, readFirst bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if readFirst {
					c.Read(make([]byte, 512))
				}
				c.Write(banner)
				c.Read(make([]byte, 1)) // until the node hangs up
			}()
		}
	}()
	return ln.Addr().String()
}

// syncReply sends a SYNC COPY of one object from addr through c and
// returns the peer's status and everything the reply says about it, with
// addr itself replaced by "PEER".
func syncReply(t *testing.T, c *stream.Client, addr string) (stream.Status, string) {
	t.Helper()
	res, err := c.Sync(context.Background(), []stream.PeerRequest{{Kind: stream.Copy, From: addr, Objects: []stream.ObjectID{{1}}}})
	if err == nil || len(res.Peers) != 1 || len(res.Peers[0].Objects) != 1 {
		t.Fatalf("SYNC from %s: %v %+v, want one failed peer request", addr, err, res)
	}
	pr := res.Peers[0]
	said := err.Error() + " | " + pr.Message + " | " + pr.Objects[0].Message
	return pr.Status, strings.ReplaceAll(said, addr, "PEER")
}

// A SYNC makes a node dial whatever host:port its caller names, so its
// reply must not turn the node into a port scanner. With keys, a closed
// port, services that are not ours, a plain (keyless) plasma node and a
// plasma node with an untrusted key all get the very same reply (the
// reason goes to the node's log); without keys, services that are not
// ours all get one reply that quotes none of their bytes (a frame type,
// flags or length read from a banner).
func TestSyncIsNotAPortScanner(t *testing.T) {
	k := newKeyring(t, "b", "stranger", "writer")
	var logs testutil.Buffer
	keyed := testnode.Start(t, "b", 16<<20, func(c *streamserver.Config) {
		c.PrivateKey, c.TrustedKeys = k.file["b"], k.trustFile(t, "b.trust", "writer", "write")
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	plain := testnode.Start(t, "p", 16<<20)
	stranger := k.startKeyed(t, "stranger", k.trustFile(t, "s.trust", "b", "admin"))

	foreign := map[string]string{
		// Banners of which the header fields (length, type, flags) differ.
		"ssh":          service(t, []byte("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3\r\n"), false),
		"http":         service(t, []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"), true),
		"frame-like":   service(t, []byte{5, 0, 0, 0, 'A', 'B', 0, 0, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'}, true),
		"flags":        service(t, []byte{5, 0, 0, 0, 'A', 'B', 'C', 'D', 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'}, true),
		"long, banner": service(t, []byte{0xff, 0xff, 0xff, 0x0f, 'A', 'B', 0, 0, 0, 0, 0, 0}, true),
	}
	bg := context.Background()

	pc, err := stream.Connect(bg, plain.Addr, stream.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var first string
	for name, addr := range foreign {
		st, said := syncReply(t, pc, addr)
		t.Logf("without keys, %s: %s %s", name, st, said)
		if !strings.Contains(said, "did not answer as a plasma stream server") {
			t.Fatalf("without keys, a SYNC from a %s service: %s %q", name, st, said)
		}
		if first == "" {
			first = said
		} else if said != first {
			t.Fatalf("without keys, replies differ with the service's bytes:\n%q\n%q", first, said)
		}
	}

	kc, err := stream.Connect(bg, keyed.Addr, k.as("writer", "b")...)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	closed := net.JoinHostPort("127.0.0.1", strconv.Itoa(testutil.FreePort(t, "127.0.0.1")))
	targets := map[string]string{"closed port": closed, "plain plasma node": plain.Addr, "untrusted plasma node": stranger.Addr}
	for name, addr := range foreign {
		targets[name] = addr
	}
	first = ""
	for name, addr := range targets {
		st, said := syncReply(t, kc, addr)
		t.Logf("with keys, %s: %s %s", name, st, said)
		if st != stream.StatusPeerUnreachable {
			t.Fatalf("with keys, a SYNC from a %s: %s %q, want PeerUnreachable", name, st, said)
		}
		if first == "" {
			first = said
		} else if said != first {
			t.Fatalf("with keys, the reply tells a %s from another target:\n%q\n%q", name, first, said)
		}
	}
	// The operator still learns why, from the node's log.
	if !strings.Contains(logs.String(), "connection refused") || !strings.Contains(logs.String(), "does not speak TLS") {
		t.Fatalf("the node's log does not say why the peers failed:\n%s", logs.String())
	}
}
