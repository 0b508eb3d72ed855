package stream_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/stream"
)

// A stream server out of file descriptors keeps serving: accept fails
// with EMFILE while connections hold every descriptor, the server backs
// off and logs it, and once those connections close it accepts again.
func TestOutOfFileDescriptors(t *testing.T) {
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	addr, logs, exited, _ := startStreamLogged(t, "a", sock, "ulimit -n 64;")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// The kernel completes handshakes into the listen backlog whether or
	// not the server can accept them: dial well past the limit, then wait
	// for the server to say it ran out.
	for range 150 {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break // the backlog is full too
		}
		held = append(held, c)
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), "too many open files"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections and the server never ran out of descriptors", len(held))
		}
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	select {
	case <-exited:
		t.Fatal("the server exited when it ran out of file descriptors")
	default:
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := stream.Connect(bg, addr, stream.WithTimeout(2*time.Second))
		if err == nil {
			_, err = c.Ping(bg)
			c.Close()
			if err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server does not serve again after its descriptors were freed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "accept failed; retrying") {
		t.Error("the log does not say that accept failed")
	}
}
