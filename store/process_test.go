package store_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// Tests that need a second process re-run this test binary in a "role":
// TestMain sees PLASMA_TEST_ROLE and runs that role instead of the tests.
// Roles talk to the parent through stdout lines and stdin lines.
func TestMain(m *testing.M) {
	if role := os.Getenv("PLASMA_TEST_ROLE"); role != "" {
		if err := runRole(role, os.Getenv("PLASMA_TEST_SOCKET"), os.Getenv("PLASMA_TEST_ID")); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runRole(role, sock, idHex string) error {
	ctx := context.Background()
	c, err := store.Connect(ctx, sock)
	if err != nil {
		return err
	}
	id, _ := store.ParseObjectID(idHex)
	in := bufio.NewScanner(os.Stdin)
	switch role {
	case "watch-shared":
		// Get the object and report its first byte each time the parent
		// asks, without ever fetching it again.
		o, err := c.GetOne(ctx, id, -1)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		for in.Scan() {
			fmt.Printf("byte %d\n", o.Data[0])
		}
	case "create-then-seal":
		buf, err := c.Create(ctx, id, 1<<20, []byte("late"))
		if err != nil {
			return err
		}
		for i := range buf {
			buf[i] = 0xAB
		}
		fmt.Println("created")
		in.Scan() // wait for the parent's go-ahead
		if err := c.Seal(ctx, id); err != nil {
			return err
		}
		fmt.Println("sealed")
		in.Scan()
	case "hold-and-hang":
		// Hold a reference to a sealed object and an unsealed object of
		// our own, then wait to be killed.
		if _, err := c.GetOne(ctx, id, 0); err != nil {
			return err
		}
		if _, err := c.Create(ctx, store.RandomObjectID(), 2<<20, nil); err != nil {
			return err
		}
		fmt.Println("holding")
		select {}
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	return nil
}

type role struct {
	cmd *exec.Cmd
	in  *os.File
	out *bufio.Scanner
}

func startRole(t *testing.T, name, sock string, id store.ObjectID) *role {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PLASMA_TEST_ROLE="+name, "PLASMA_TEST_SOCKET="+sock, "PLASMA_TEST_ID="+hex.EncodeToString(id[:]))
	inR, inW, _ := os.Pipe()
	cmd.Stdin = inR
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	r := &role{cmd: cmd, in: inW, out: bufio.NewScanner(out)}
	t.Cleanup(func() { inW.Close(); cmd.Process.Kill(); cmd.Wait() })
	return r
}

func (r *role) expect(t *testing.T, prefix string) string {
	t.Helper()
	if !r.out.Scan() {
		t.Fatalf("helper process ended before printing %q", prefix)
	}
	line := r.out.Text()
	if !strings.HasPrefix(line, prefix) {
		t.Fatalf("helper printed %q, want %q", line, prefix)
	}
	return line
}

func (r *role) tell() { fmt.Fprintln(r.in, "go") }

// Two processes see one object in the same physical memory: a write
// through the creator's mapping (deliberately breaking immutability, which
// only a test would do) is visible to the reader without any new request.
func TestZeroCopyAcrossProcesses(t *testing.T) {
	sock, _ := testutil.StartStoreProcess(t, "16MiB")
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	id := store.RandomObjectID()
	buf, err := c.Create(ctx, id, 4<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf[0] = 1
	if err := c.Seal(ctx, id); err != nil {
		t.Fatal(err)
	}
	reader := startRole(t, "watch-shared", sock, id)
	reader.expect(t, "ready")
	reader.tell()
	reader.expect(t, "byte 1")
	buf[0] = 42
	reader.tell()
	reader.expect(t, "byte 42")
}

// A Get blocked in this process is released by a Seal in another.
func TestBlockingGetReleasedBySealInAnotherProcess(t *testing.T) {
	sock, _ := testutil.StartStoreProcess(t, "16MiB")
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	id := store.RandomObjectID()
	writer := startRole(t, "create-then-seal", sock, id)
	writer.expect(t, "created")
	got := make(chan *store.Object, 1)
	go func() {
		o, _ := c.GetOne(ctx, id, -1)
		got <- o
	}()
	// While that Get blocks, the same client and the store keep serving.
	if _, err := c.Put(ctx, []byte("meanwhile"), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
		t.Fatal("Get returned before the object was sealed")
	case <-time.After(50 * time.Millisecond):
	}
	writer.tell()
	writer.expect(t, "sealed")
	select {
	case o := <-got:
		if o == nil || len(o.Data) != 1<<20 || o.Data[12345] != 0xAB || string(o.Metadata) != "late" {
			t.Fatalf("blocked Get returned %v", o)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocked Get not released by the seal")
	}
}

// A client killed with SIGKILL loses its unsealed objects and references.
func TestKilledClientCleanup(t *testing.T) {
	sock, _ := testutil.StartStoreProcess(t, "16MiB")
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	id, err := c.Put(ctx, make([]byte, 1<<20), nil)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := c.Stats(ctx)
	h := startRole(t, "hold-and-hang", sock, id)
	h.expect(t, "holding")
	during, _ := c.Stats(ctx)
	if during.Objects != 2 || during.Pinned < 3<<20 {
		t.Fatalf("helper's holdings not visible: %+v", during)
	}
	h.cmd.Process.Signal(syscall.SIGKILL)
	h.cmd.Wait()
	waitFor(t, func() bool {
		st, _ := c.Stats(ctx)
		return st.Objects == 1 && st.Pinned == 0 && st.Used == before.Used
	})
	// The memory is really back: the whole rest of the store is usable.
	if _, err := c.Create(ctx, store.RandomObjectID(), 14<<20, nil); err != nil {
		t.Fatalf("memory not returned: %v", err)
	}
}
