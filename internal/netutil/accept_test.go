package netutil

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
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
	b.delay = AcceptRetryMax / 2 * 3
	b.delay = min(max(2*b.delay, AcceptRetryMin), AcceptRetryMax)
	if b.delay != AcceptRetryMax {
		t.Fatalf("delay %s beyond the cap", b.delay)
	}
	b.Reset()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if b.Retry(cctx, emfile, nil) {
		t.Fatal("retried after the context ended")
	}
}
