package testnode

import (
	"context"
	"testing"

	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/testutil"
)

// Node is an in-process store and the stream server in front of it.
type Node struct {
	Name   string
	Socket string // the store's unix socket
	Addr   string // the stream server's host:port
	Store  *testutil.Store
	Server *streamserver.Server
}

// Start runs a store of capacity bytes and a stream server named name on
// 127.0.0.1; edits change the stream server's config before it starts.
func Start(t testing.TB, name string, capacity uint64, edits ...func(*streamserver.Config)) *Node {
	t.Helper()
	st := testutil.StartStoreConfig(t, storeserver.Config{Capacity: capacity})
	cfg := streamserver.Config{PlasmaSocket: st.Socket, Bind: "127.0.0.1", NodeName: name}
	for _, edit := range edits {
		edit(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := streamserver.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("start stream server %s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	// Registered after the store's cleanup, so it runs first.
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stream server %s: %v", name, err)
		}
	})
	return &Node{Name: name, Socket: st.Socket, Addr: srv.Addr().String(), Store: st, Server: srv}
}
