package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// A store socket owned by another user (one who created /tmp/plasma
// first) is refused, naming the owner, unless that owner is trusted.
// Needs root to give the socket away (testutil.ForeignOwner).
func TestConnectRefusesForeignSocketOwner(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	testutil.ForeignOwner(t, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := store.Connect(ctx, sock)
	if !errors.Is(err, store.ErrSocketOwner) || !strings.Contains(err.Error(), "owned by uid 65534") ||
		!strings.Contains(err.Error(), "--socket-owner") || !strings.Contains(err.Error(), sock) {
		t.Fatalf("connect to a socket of uid 65534: %v", err)
	}
	if _, err := store.Subscribe(ctx, sock); !errors.Is(err, store.ErrSocketOwner) {
		t.Fatalf("subscribe to a socket of uid 65534: %v", err)
	}
	c, err := store.Connect(ctx, sock, store.WithSocketOwner(testutil.ForeignUID))
	if err != nil {
		t.Fatalf("connect trusting uid 65534: %v", err)
	}
	defer c.Close()
	if _, err := c.Put(ctx, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx) // trusts what its client trusts
	if err != nil {
		t.Fatalf("subscribe through a client trusting uid 65534: %v", err)
	}
	sub.Close()
	sub, err = store.Subscribe(ctx, sock, store.SubscribeConnecting(store.WithSocketOwner(testutil.ForeignUID)))
	if err != nil {
		t.Fatalf("subscribe trusting uid 65534: %v", err)
	}
	sub.Close()
}
