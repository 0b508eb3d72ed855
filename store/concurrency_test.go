package store_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// Many clients, and many goroutines on one shared client, put, get,
// release and delete at once (run with -race); every Get sees exactly the
// bytes that were put, and at the end nothing is pinned.
func TestConcurrentClients(t *testing.T) {
	sock, _ := testutil.StartStore(t, 64<<20)
	shared := testutil.StoreClient(t, sock)
	ctx := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	worker := func(c *store.Client, seed uint64) {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(seed, 1))
		for i := range 150 {
			data := testutil.Pattern(rng.IntN(200<<10), byte(i))
			id, err := c.Put(ctx, data, []byte{byte(seed)})
			if errors.Is(err, store.ErrOutOfMemory) {
				continue
			}
			if err != nil {
				errc <- err
				return
			}
			o, err := c.GetOne(ctx, id, time.Second)
			if errors.Is(err, store.ErrObjectNotFound) {
				continue // evicted or deleted by another worker: allowed
			}
			if err != nil {
				errc <- err
				return
			}
			if !bytes.Equal(o.Data, data) {
				errc <- errors.New("data mismatch")
			}
			c.Release(ctx, id)
			if rng.IntN(3) == 0 {
				c.Delete(ctx, id)
			}
		}
	}
	for i := range 6 {
		c := testutil.StoreClient(t, sock)
		wg.Add(2)
		go worker(c, uint64(i))
		go worker(shared, uint64(100+i))
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	// The store's background hasher references an object while it hashes
	// it (a second after its seal), so a pin may outlive the workers
	// briefly; a leaked reference never goes.
	var st store.Stats
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err = shared.Stats(ctx)
		if err == nil && st.Pinned == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the workers: %+v %v", st, err)
		}
	}
}

func TestGetTimeoutAndMultiplexing(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	never := store.RandomObjectID()
	present, _ := c.Put(ctx, []byte("here"), nil)

	// A Get that waits forever does not hold up the same client's calls.
	blocked := make(chan error, 1)
	bctx, cancel := context.WithCancel(ctx)
	go func() { _, err := c.Get(bctx, []store.ObjectID{never}, -1); blocked <- err }()
	for range 100 {
		if ok, err := c.Contains(ctx, present); !ok || err != nil {
			t.Fatal("client stalled behind a blocked Get")
		}
	}
	// A timed Get returns what it has when the time is up.
	start := time.Now()
	objs, err := c.Get(ctx, []store.ObjectID{present, never}, 100*time.Millisecond)
	if err != nil || objs[0] == nil || objs[1] != nil {
		t.Fatalf("timed Get: %v %v", objs, err)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Fatal("timed Get returned before its timeout")
	}
	c.Release(ctx, present)
	cancel()
	if err := <-blocked; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Get: %v", err)
	}
	// The late reply of the cancelled Get must not leak a reference.
	later := store.RandomObjectID()
	done := make(chan struct{})
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		c.Get(cctx, []store.ObjectID{later}, -1)
		close(done)
	}()
	<-done
	if err := c.CreateAndSeal(ctx, later, []byte("late"), nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		infos, _ := c.List(ctx)
		for _, in := range infos {
			if in.ID == later {
				return in.RefCount == 0
			}
		}
		return false
	})
}

func TestSubscribe(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	sub, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	a, _ := c.Put(ctx, testutil.Pattern(600<<10, 1), nil)
	c.Delete(ctx, a)
	b, _ := c.Put(ctx, testutil.Pattern(600<<10, 2), []byte("xy"))
	d := store.RandomObjectID()
	c.PutID(ctx, d, testutil.Pattern(600<<10, 3), nil) // evicts b; no digest given
	da, db := b3sum(testutil.Pattern(600<<10, 1)), b3sum(testutil.Pattern(600<<10, 2))
	want := []store.Event{
		{Kind: store.EventSealed, ID: a, DataSize: 600 << 10, Digest: da},
		{Kind: store.EventDeleted, ID: a, DataSize: 600 << 10, Digest: da},
		{Kind: store.EventSealed, ID: b, DataSize: 600 << 10, MetadataSize: 2, Digest: db},
		{Kind: store.EventEvicted, ID: b, DataSize: 600 << 10, MetadataSize: 2, Digest: db},
		{Kind: store.EventSealed, ID: d, DataSize: 600 << 10},
	}
	for i, w := range want {
		select {
		case ev := <-sub.Events():
			ev.Time = time.Time{}
			if ev != w {
				t.Fatalf("event %d: got %+v, want %+v", i, ev, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d (%+v) not delivered", i, w)
		}
	}
}

// Malformed bytes on the socket get an error or a dropped connection, and
// the store keeps serving everyone else.
func TestMalformedInput(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	good := testutil.StoreClient(t, sock)
	ctx := context.Background()
	id, _ := good.Put(ctx, []byte("survivor"), nil)

	hello := storewire.Hello{Version: storewire.Version}
	copy(hello.Magic[:], storewire.Magic)
	helloFrame := storewire.AppendFrame(nil, storewire.TypeHello, 1, hello.Append(nil))
	badVersion := storewire.Hello{Version: 99}
	copy(badVersion.Magic[:], storewire.Magic)
	cases := map[string][][]byte{
		"garbage instead of hello": {[]byte("GET / HTTP/1.1\r\n\r\n")},
		"wrong version":            {storewire.AppendFrame(nil, storewire.TypeHello, 1, badVersion.Append(nil))},
		"huge frame":               {helloFrame, {0xff, 0xff, 0xff, 0x7f, 6, 0, 0, 0, 1, 0, 0, 0}},
		"short create":             {helloFrame, storewire.AppendFrame(nil, storewire.TypeCreate, 2, []byte{1, 2, 3})},
		"unknown type":             {helloFrame, storewire.AppendFrame(nil, 999, 2, nil)},
		"get count lies":           {helloFrame, storewire.AppendFrame(nil, storewire.TypeGet, 2, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0})},
		"truncated frame":          {helloFrame, storewire.AppendFrame(nil, storewire.TypeSeal, 2, make([]byte, 53))[:30]},
	}
	for name, writes := range cases {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for _, w := range writes {
				conn.Write(w)
			}
			if name == "truncated frame" {
				conn.(*net.UnixConn).CloseWrite()
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			var sawError bool
			buf := make([]byte, 4096)
			for {
				h, p, _, err := storewire.ReadFrame(conn, buf, storewire.MaxReplyPayload)
				if err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Fatal("store neither answered nor hung up")
					}
					break // connection dropped: fine
				}
				if storewire.Type(h.Type) == storewire.TypeError {
					var e storewire.ErrorReply
					if e.Decode(p) != nil || e.Message == "" {
						t.Fatal("error reply without a message")
					}
					sawError = true
					break
				}
			}
			// A truncated frame may be answered or just dropped.
			if wantError := name != "truncated frame"; wantError && !sawError {
				t.Fatalf("error reply received: %v, want %v", sawError, wantError)
			}
			if o, err := good.GetOne(ctx, id, 0); err != nil || string(o.Data) != "survivor" {
				t.Fatalf("store unhealthy after %s: %v", name, err)
			}
			good.Release(ctx, id)
		})
	}
}

func b3sum(data []byte) store.Digest { return blake3.Sum256(data) }
