package netutil

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// A closed listener ends the loop; EMFILE waits, doubling from 5 ms up to
// 1 s, and Reset starts over.
func TestAcceptBackoff(t *testing.T) {
	var b AcceptBackoff
	ctx := context.Background()
	if b.Retry(ctx, fmt.Errorf("accept: %w", net.ErrClosed), nil) {
		t.Fatal("retried on a closed listener")
	}
	emfile := &net.OpError{Op: "accept", Err: syscall.EMFILE}
	for _, want := range []string{"5ms", "10ms", "20ms"} {
		if !b.Retry(ctx, emfile, nil) || b.delay.String() != want {
			t.Fatalf("delay %s, want %s", b.delay, want)
		}
	}
	b.delay = 900 * time.Millisecond
	if !b.Retry(ctx, emfile, nil) || b.delay != AcceptRetryMax {
		t.Fatalf("delay %s, want the cap %s", b.delay, AcceptRetryMax)
	}
	b.Reset()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if b.Retry(cctx, emfile, nil) {
		t.Fatal("retried after the context ended")
	}
}
