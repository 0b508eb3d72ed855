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
	c := refusedUnlessTrusted(t, sock, "is owned by uid 65534")
	sub, err := c.Subscribe(context.Background()) // trusts what its client trusts
	if err != nil {
		t.Fatalf("subscribe through a client trusting uid 65534: %v", err)
	}
	sub.Close()
	sub, err = store.Subscribe(context.Background(), sock, store.SubscribeConnecting(store.WithSocketOwner(testutil.ForeignUID)))
	if err != nil {
		t.Fatalf("subscribe trusting uid 65534: %v", err)
	}
	sub.Close()
}

// A socket whose owner checks out (root) but behind which another user's
// store listens is refused after connecting, naming who runs it: the
// path may change between the owner check and the connect.
func TestConnectRefusesStoreRunByAnotherUser(t *testing.T) {
	sock := testutil.ForeignStore(t, "1MiB")
	refusedUnlessTrusted(t, sock, "runs as uid 65534")
}

// refusedUnlessTrusted checks that Connect and Subscribe refuse the store
// at sock, saying want, and that a client trusting uid 65534 is served;
// it returns that client.
func refusedUnlessTrusted(t *testing.T, sock, want string) *store.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := store.Connect(ctx, sock)
	if !errors.Is(err, store.ErrSocketOwner) || !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), "--socket-owner") || !strings.Contains(err.Error(), sock) {
		t.Fatalf("connect to a store of uid 65534: %v, want %q", err, want)
	}
	if _, err := store.Subscribe(ctx, sock); !errors.Is(err, store.ErrSocketOwner) {
		t.Fatalf("subscribe to a store of uid 65534: %v", err)
	}
	c, err := store.Connect(ctx, sock, store.WithSocketOwner(testutil.ForeignUID))
	if err != nil {
		t.Fatalf("connect trusting uid 65534: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Put(ctx, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	return c
}
