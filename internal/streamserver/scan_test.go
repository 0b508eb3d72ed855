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

// replies asks the node behind c to SYNC COPY an object from addr, and
// to PULL one from it, and returns the status of each and everything the
// replies say about the peer, with addr itself replaced by "PEER".
func replies(t *testing.T, c *stream.Client, addr string) (st [2]stream.Status, said [2]string) {
	t.Helper()
	res, err := c.Sync(context.Background(), []stream.PeerRequest{{Kind: stream.Copy, From: addr, Objects: []stream.ObjectID{{1}}}})
	if err == nil || len(res.Peers) != 1 || len(res.Peers[0].Objects) != 1 {
		t.Fatalf("SYNC from %s: %v %+v, want one failed peer request", addr, err, res)
	}
	pr := res.Peers[0]
	st[0], said[0] = pr.Status, err.Error()+" | "+pr.Message+" | "+pr.Objects[0].Message
	out, err := c.Pull(context.Background(), stream.ObjectID{1}, []stream.PullSource{{Node: "x", Addr: addr}}, 0, 1)
	if err == nil || out.OK || len(out.Sources) != 1 {
		t.Fatalf("PULL from %s: %v %+v, want a failed source", addr, err, out)
	}
	st[1], said[1] = stream.Status(out.Code), err.Error()+" | "+out.Message+" | "+out.Sources[0].Failed
	for i := range said {
		said[i] = strings.ReplaceAll(said[i], addr, "PEER")
	}
	return st, said
}

// A SYNC, and a PULL from named sources, make a node dial whatever
// host:port its caller names, so their replies must not turn the node
// into a port scanner. With keys, a closed port, services that are not
// ours, a plain (keyless) plasma node and a plasma node with an
// untrusted key all get the very same reply (the reason goes to the
// node's log); without keys, services that are not ours all get one
// reply that quotes none of their bytes (a frame type, flags or length
// read from a banner).
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
	request := [2]string{"SYNC", "PULL"}

	pc, err := stream.Connect(bg, plain.Addr, stream.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var first [2]string
	for name, addr := range foreign {
		_, said := replies(t, pc, addr)
		for i := range said {
			t.Logf("without keys, %s from %s: %s", request[i], name, said[i])
			if !strings.Contains(said[i], "did not answer as a plasma stream server") {
				t.Fatalf("without keys, a %s from a %s service: %q", request[i], name, said[i])
			}
			if first[i] == "" {
				first[i] = said[i]
			} else if said[i] != first[i] {
				t.Fatalf("without keys, %s replies differ with the service's bytes:\n%q\n%q", request[i], first[i], said[i])
			}
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
	first = [2]string{}
	for name, addr := range targets {
		st, said := replies(t, kc, addr)
		for i := range said {
			t.Logf("with keys, %s from %s: %s %s", request[i], name, st[i], said[i])
			if st[i] != stream.StatusPeerUnreachable {
				t.Fatalf("with keys, a %s from a %s: %s %q, want PeerUnreachable", request[i], name, st[i], said[i])
			}
			if first[i] == "" {
				first[i] = said[i]
			} else if said[i] != first[i] {
				t.Fatalf("with keys, the %s reply tells a %s from another target:\n%q\n%q", request[i], name, first[i], said[i])
			}
		}
	}
	// The operator still learns why, from the node's log.
	if !strings.Contains(logs.String(), "connection refused") || !strings.Contains(logs.String(), "does not speak TLS") {
		t.Fatalf("the node's log does not say why the peers failed:\n%s", logs.String())
	}
}
