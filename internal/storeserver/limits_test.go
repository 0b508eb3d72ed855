package storeserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// Running out of file descriptors once killed the store, and every object
// with it: accept failed with EMFILE and Serve returned. Now it backs off,
// logs, and serves again once descriptors are free.
func TestOutOfDescriptorsKeepsServing(t *testing.T) {
	// --max-clients above what 64 descriptors allow, so that accept
	// itself fails.
	sock, stderr, exited := startWithFileLimit(t, 64, "--max-clients", "1000")
	ctx := context.Background()
	first := testutil.StoreClient(t, sock)
	id, err := first.Put(ctx, []byte("precious"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var clients []*store.Client
	for len(clients) < 200 {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := store.Connect(cctx, sock)
		cancel()
		if err != nil {
			break // the store can no longer accept
		}
		clients = append(clients, c)
	}
	if len(clients) == 200 {
		t.Fatal("200 clients connected to a store limited to 64 descriptors")
	}
	t.Logf("%d clients connected before accept failed", len(clients))
	waitFor(t, "the store to log the failing accept", func() bool { return strings.Contains(stderr.String(), "too many open files") })
	select {
	case <-exited:
		t.Fatalf("the store exited when it ran out of descriptors (after %d clients)", len(clients))
	default:
	}
	for _, c := range clients[:10] {
		c.Close()
	}
	for _, c := range clients[10:] {
		defer c.Close()
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := store.Connect(cctx, sock)
	if err != nil {
		t.Fatalf("no new client served once descriptors were free: %v", err)
	}
	defer c.Close()
	if o, err := c.GetOne(ctx, id, 0); err != nil || string(o.Data) != "precious" {
		t.Fatalf("the object did not survive: %v", err)
	}
}

// startWithFileLimit runs the store binary with at most files open
// descriptors (the test process keeps its own limit).
func startWithFileLimit(t *testing.T, files int, args ...string) (sock string, stderr *testutil.Buffer, exited <-chan struct{}) {
	sock = filepath.Join(testutil.ShortDir(t), "s")
	args = append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, files), storeBin(t), "-m", "1MiB", "-s", sock}, args...)
	cmd := exec.Command("sh", args...)
	stderr = &testutil.Buffer{}
	cmd.Stderr = stderr
	t.Cleanup(func() { t.Logf("store stderr:\n%s", stderr.String()) }) // after Run's: the store has stopped
	exited = testutil.Run(t, cmd)
	testutil.WaitSocket(t, sock, exited)
	return sock, stderr, exited
}

// The default client limit, derived from the open-file limit, leaves the
// store the descriptors it needs, two per idle client (its socket and the
// duplicate parked in the poller): clients beyond it are told the store is
// busy instead of making accept fail.
func TestDefaultClientLimitFollowsFileLimit(t *testing.T) {
	sock, stderr, _ := startWithFileLimit(t, 64)
	want := fmt.Sprintf("limit %d", (64-32-64/16)/2)
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := store.Connect(ctx, sock)
		cancel()
		if err != nil {
			if !errors.Is(err, store.ErrBusy) || !strings.Contains(err.Error(), want) {
				t.Fatalf("client %d: %v; want store busy, %s", i+1, err, want)
			}
			break
		}
		defer c.Close()
	}
	if strings.Contains(stderr.String(), "accept failed") {
		t.Fatal("accept failed under the default client limit")
	}
}

// Beyond --max-clients a new client is told the store is busy, with the
// figures, and the store serves the others; a freed slot is reused.
func TestClientLimit(t *testing.T) {
	sock, _ := testutil.StartStoreProcess(t, "1MiB", "--max-clients", "3")
	var clients []*store.Client
	for range 3 {
		clients = append(clients, testutil.StoreClient(t, sock))
	}
	_, err := store.Connect(context.Background(), sock)
	if !errors.Is(err, store.ErrBusy) || !strings.Contains(err.Error(), "store busy: 3 clients connected, limit 3") {
		t.Fatalf("a fourth client: %v; want store busy naming the limit", err)
	}
	if _, err := clients[0].Stats(context.Background()); err != nil {
		t.Fatalf("a connected client is no longer served: %v", err)
	}
	clients[2].Close()
	waitFor(t, "a freed slot to be reused", func() bool {
		c, err := store.Connect(context.Background(), sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// A client that connects and never completes the handshake is dropped.
func TestHandshakeDeadline(t *testing.T) {
	sock := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 1 << 20, HandshakeTimeout: 100 * time.Millisecond}).Socket
	idle, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("a connection that never said Hello: %v; want it closed by the store", err)
	}
	c := testutil.StoreClient(t, sock)
	waitFor(t, "the store to count only the client that said Hello", func() bool {
		st, err := c.Stats(context.Background())
		return err == nil && st.Clients == 1
	})
}
