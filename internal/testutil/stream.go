package testutil

import (
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// FreePort returns a TCP port that was free a moment ago on host.
func FreePort(t testing.TB, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t, "127.0.0.1")))
}

// Node is a store process and a stream server process on loopback.
type Node struct {
	Name   string
	Socket string // the store's unix socket
	Addr   string // the stream server's host:port
	Store  *exec.Cmd
	Stream *exec.Cmd
	Log    *Buffer // the stream server's stderr (also in the test log)
}

// StartNode starts a plasma-store-server of the given memory and a
// plasma-stream-server in front of it, with extra stream server flags.
// Both stop at the end of the test.
func StartNode(t testing.TB, name, memory string, streamArgs ...string) *Node {
	t.Helper()
	sock, storeCmd := StartStoreProcess(t, memory)
	n := &Node{Name: name, Socket: sock, Store: storeCmd}
	n.Stream, n.Addr, n.Log = startStreamServer(t, name, sock, "127.0.0.1", streamArgs...)
	return n
}

// StartStreamServer runs plasma-stream-server for the store at sock,
// bound to host on a free port.
func StartStreamServer(t testing.TB, name, sock, host string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd, addr, _ := startStreamServer(t, name, sock, host, args...)
	return cmd, addr
}

func startStreamServer(t testing.TB, name, sock, host string, args ...string) (*exec.Cmd, string, *Buffer) {
	t.Helper()
	port := FreePort(t, host)
	log := new(Buffer)
	cmd := exec.Command(filepath.Join(Binaries(t), "plasma-stream-server"),
		append([]string{"-s", sock, "-p", strconv.Itoa(port), "--bind", host, "--node-name", name, "--log-level", "warn"}, args...)...)
	cmd.Stderr = io.MultiWriter(&prefixWriter{t: t, prefix: name + ": "}, log)
	exited := Run(t, cmd)
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	deadline := time.Now().Add(20 * time.Second)
	for !helloOK(addr) {
		select {
		case <-exited:
			t.Fatalf("stream server %s exited before serving", name)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream server %s not serving on %s after 20s", name, addr)
		}
	}
	return cmd, addr, log
}

// helloOK reports whether a stream server answers a HELLO on addr: it
// accepts TCP connections as soon as it listens, but answers only once it
// serves (after joining its cluster, for instance). A server with keys
// answers a plain HELLO by closing the connection (it is not a TLS
// handshake): that is an answer too, where a server not serving yet says
// nothing until the deadline.
func helloOK(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	h := streamwire.Hello{Version: streamwire.Version, Role: streamwire.RoleClient, Name: "testutil"}
	copy(h.Magic[:], streamwire.Magic)
	if _, err := c.Write(streamwire.AppendFrame(nil, streamwire.TypeHello, h.Append(nil))); err != nil {
		return false
	}
	hdr, _, _, err := wire.ReadFrame(c, nil, 4096)
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	return err == nil && streamwire.Type(hdr.Type) == streamwire.TypeHello|streamwire.ReplyBit
}

// StartProcess runs one of the module's binaries with args until the end
// of the test (then SIGINT, SIGKILL after 10 s).
func StartProcess(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd, _ := startProc(t, name, name, args)
	return cmd
}

// RunBinary runs one of the module's binaries to completion and returns
// its combined output.
func RunBinary(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(filepath.Join(Binaries(t), name), args...).CombinedOutput()
	return string(out), err
}

// WaitTCP waits until addr accepts connections.
func WaitTCP(t testing.TB, addr string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("nothing listening on %s after 20s", addr)
}
