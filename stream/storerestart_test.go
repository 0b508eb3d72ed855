package stream_test

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// startStreamLogged runs plasma-stream-server for the store at sock
// through shell (a prefix such as "ulimit -n 64;", or ""), its log in the
// returned buffer, and waits until it serves. It is stopped at the end of
// the test. exited is closed if it ends; pid is the server's.
func startStreamLogged(t *testing.T, name, sock, shell string, args ...string) (addr string, logs *testutil.Buffer, exited <-chan struct{}, pid int) {
	t.Helper()
	port := testutil.FreePort(t, "127.0.0.1")
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	argv := append([]string{filepath.Join(testutil.Binaries(t), "plasma-stream-server"), "-s", sock, "-p", strconv.Itoa(port),
		"--bind", "127.0.0.1", "--node-name", name, "--log-level", "info"}, args...)
	cmd := exec.Command("sh", "-c", shell+` exec "$@"`, "sh")
	cmd.Args = append(cmd.Args, argv...)
	logs = &testutil.Buffer{}
	cmd.Stderr = logs
	t.Cleanup(func() { // after Run's: the server has stopped
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logs)
		}
	})
	exited = testutil.Run(t, cmd)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := stream.Connect(bg, addr); err == nil {
			c.Close()
			return addr, logs, exited, cmd.Process.Pid
		}
		select {
		case <-exited:
			t.Fatalf("stream server %s exited before serving:\n%s", name, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream server %s not serving on %s", name, addr)
		}
	}
}

// killStore SIGKILLs a store process and waits until its socket no
// longer answers.
func killStore(t *testing.T, cmd *exec.Cmd, sock string) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGKILL)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("unix", sock)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("SIGKILLed store still accepting")
		}
	}
}

// restartStore starts a new store on the socket of a dead one.
func restartStore(t *testing.T, sock string) {
	t.Helper()
	testutil.StartProcess(t, "plasma-store-server", "-m", "64MiB", "-s", sock)
	testutil.WaitSocket(t, sock, nil)
}

// waitStore waits until PING reports the server's store up (or down).
func waitStore(t *testing.T, c *stream.Client, up bool) stream.StoreState {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, st, err := c.PingStore(bg)
		if err != nil {
			t.Fatalf("PING: %v", err)
		}
		if st.Up == up {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("store still up=%v after 20s", st.Up)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A store SIGKILLed and restarted on the same socket: the stream server
// notices at once and says so in its log, answers PING and STAT with the
// store's state and requests that need the store with "store unavailable"
// (never a broken pipe), reconnects by itself, and then serves SYNC, COPY,
// LIST and STAT again.
func TestStoreRestart(t *testing.T) {
	b := testutil.StartNode(t, "b", "64MiB")
	sock, storeCmd := testutil.StartStoreProcess(t, "64MiB")
	addr, logs, _, _ := startStreamLogged(t, "a", sock, "")
	lost, later := store.RandomObjectID(), store.RandomObjectID()
	putID(t, sock, lost, []byte("gone with the store"), nil)
	putID(t, b.Socket, later, testutil.Pattern(3<<20, 5), []byte("m"))
	c := streamClient(t, addr)
	if _, err := c.Ping(bg); err != nil {
		t.Fatal(err)
	}

	killed := time.Now()
	killStore(t, storeCmd, sock)
	down := waitStore(t, c, false)
	if down.Since.Before(killed.Add(-time.Second)) {
		t.Errorf("store down since %s, before it was killed (%s)", down.Since, killed)
	}
	unavailable := func(what string, err error) {
		t.Helper()
		if !stream.IsStatus(err, stream.StatusStoreUnavailable) || !strings.Contains(err.Error(), "store unavailable") ||
			!strings.Contains(err.Error(), sock) || strings.Contains(err.Error(), "broken pipe") {
			t.Errorf("%s while the store is down: %v", what, err)
		}
	}
	_, err := c.Ping(bg)
	if !stream.IsStatus(err, stream.StatusStoreUnavailable) {
		t.Errorf("PING while the store is down: %v", err)
	}
	st, err := c.Stat(bg)
	if !stream.IsStatus(err, stream.StatusStoreUnavailable) || st.Node != "a" || st.StoreState.Up || st.Store.Capacity != 0 {
		t.Errorf("STAT while the store is down: %+v, %v", st, err)
	}
	_, err = c.List(bg)
	unavailable("LIST", err)
	_, err = c.Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: b.Addr, Objects: []stream.ObjectID{later}}})
	unavailable("SYNC", err)
	res, err := stream.CopyFrom(bg, addr, testutil.StoreClient(t, b.Socket), []stream.ObjectID{lost})
	if !stream.IsStatus(err, stream.StatusStoreUnavailable) || res == nil || res.Objects[0].Status != stream.StatusStoreUnavailable {
		t.Errorf("COPY served while the store is down: %+v, %v", res, err)
	}
	// The log comes through a pipe: it may trail the replies.
	want := "store at " + sock + " went away; reconnecting"
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("the log does not say %q", want)
			break
		}
	}

	restartStore(t, sock)
	up := waitStore(t, c, true)
	if !up.Since.After(down.Since) {
		t.Errorf("store up since %s, not after it went down (%s)", up.Since, down.Since)
	}
	r, err := c.Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: b.Addr, Objects: []stream.ObjectID{later}}})
	if err != nil || r.Status != stream.StatusOK {
		t.Fatalf("SYNC after the store came back: %+v, %v", r, err)
	}
	mustHave(t, sock, later, testutil.Pattern(3<<20, 5), []byte("m"))
	infos, err := c.List(bg)
	if err != nil || len(infos) != 1 || infos[0].ID != later {
		t.Fatalf("LIST after the store came back: %v, %v", infos, err)
	}
	if st, err := c.Stat(bg); err != nil || !st.StoreState.Up || st.Store.Objects != 1 {
		t.Fatalf("STAT after the store came back: %+v, %v", st, err)
	}
	// A peer copies from the reconnected server.
	if res, err := stream.CopyFrom(bg, addr, testutil.StoreClient(t, b.Socket), []stream.ObjectID{later}); err != nil || !res.Objects[0].Status.Success() {
		t.Fatalf("COPY served after the store came back: %+v, %v", res, err)
	}
}

// In a cluster, a node whose store restarted empty withdraws the locations
// of the objects it lost: LOCATE no longer sends anyone to it, while what
// it holds again is registered again.
func TestClusterStoreRestart(t *testing.T) {
	nodes, _ := startCluster(t, "a", "b")
	a, b := nodes[0], nodes[1]
	lost, kept := store.RandomObjectID(), store.RandomObjectID()
	putID(t, a.Socket, lost, []byte("only on a"), nil)
	putID(t, b.Socket, kept, []byte("on b"), nil)
	cb := streamClient(t, b.Addr)
	waitHolders(t, cb, lost, "[a]")
	waitHolders(t, cb, kept, "[b]")

	killStore(t, a.Store, a.Socket)
	ca := streamClient(t, a.Addr)
	waitStore(t, ca, false)
	restartStore(t, a.Socket)
	waitStore(t, ca, true)
	waitHolders(t, cb, lost, "[]")

	// The reconnected node follows its new store: a seal there is a
	// location again, and FETCH brings b's object into it.
	again := store.RandomObjectID()
	putID(t, a.Socket, again, []byte("new on a"), nil)
	waitHolders(t, cb, again, "[a]")
	if r, err := ca.Fetch(bg, []stream.ObjectID{kept}); err != nil || r.Status != stream.StatusOK {
		t.Fatalf("FETCH after the store came back: %+v, %v", r, err)
	}
	waitHolders(t, cb, kept, "[a b]")
}
