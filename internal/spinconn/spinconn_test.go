package spinconn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair is two connected unix sockets: a detached Conn and the plain peer.
func pair(t *testing.T, spin time.Duration) (*Conn, *net.UnixConn) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer := make(chan *net.UnixConn, 1)
	go func() {
		c, err := l.AcceptUnix()
		if err != nil {
			t.Error(err)
		}
		peer <- c
	}()
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Detach(uc, spin)
	if err != nil {
		t.Fatal(err)
	}
	p := <-peer
	t.Cleanup(func() { c.Close(); p.Close() })
	return c, p
}

// inPoller reports whether the socket behind fd is registered with any
// epoll instance of this process (the runtime's among them), from the
// kernel's /proc/self/fdinfo listing of each instance's targets.
func inPoller(t *testing.T, fd int) bool {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	want := "ino:" + strconv.FormatUint(st.Ino, 16) + " "
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	polls := 0
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l != "anon_inode:[eventpoll]" {
			continue
		}
		polls++
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		for _, line := range strings.Split(string(info), "\n") {
			if strings.HasPrefix(line, "tfd:") && strings.Contains(line, want) {
				return true
			}
		}
	}
	if polls == 0 {
		t.Fatal("no epoll instance in this process: the runtime's poller should have one")
	}
	return false
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func TestSocketLeavesThePollerExceptWhileParked(t *testing.T) {
	c, p := pair(t, 100*time.Microsecond)
	if inPoller(t, c.fd) {
		t.Fatal("a detached socket is still registered with the poller: every message would wake an idle thread")
	}
	got := make(chan error, 1)
	go func() {
		var b [4]byte
		_, err := io.ReadFull(c, b[:])
		got <- err
	}()
	// The read outlives its spin window and parks: only now is the
	// socket in the poller, through the temporary duplicate.
	waitFor(t, "the idle read parks in the poller", func() bool { return inPoller(t, c.fd) })
	if _, err := p.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the woken read leaves the poller", func() bool { return !inPoller(t, c.fd) })
}

func TestBytesArriveInOrderBothWays(t *testing.T) {
	c, p := pair(t, 50*time.Microsecond)
	// Larger than both socket buffers, so that Write parks until the
	// peer reads and the peer's reads run dry and park in between.
	msg := bytes.Repeat([]byte("0123456789abcdef"), 1<<18)
	wrote := make(chan error, 1)
	go func() {
		n, err := c.Write(msg)
		if err == nil && n != len(msg) {
			err = io.ErrShortWrite
		}
		wrote <- err
	}()
	got := make([]byte, len(msg))
	for off := 0; off < len(got); {
		n, err := p.Read(got[off:min(off+4096, len(got))])
		if err != nil {
			t.Fatal(err)
		}
		off += n
		if off%(1<<20) < 4096 {
			time.Sleep(2 * time.Millisecond) // let the writer fill the socket
		}
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("the bytes read differ from the bytes written")
	}
	go func() { p.Write(msg); p.Close() }()
	back, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(back, msg) {
		t.Fatalf("read back %d bytes (err %v), want %d then EOF", len(back), err, len(msg))
	}
}

func TestReadDeadline(t *testing.T) {
	for _, spin := range []time.Duration{time.Hour, time.Microsecond} { // ends spinning, ends parked
		t.Run(spin.String(), func(t *testing.T) {
			c, p := pair(t, spin)
			var b [1]byte
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := c.Read(b[:])
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("read past its deadline: %v, want a timeout", err)
			}
			// A deadline moved into the past interrupts a read already waiting.
			got := make(chan error, 1)
			c.SetReadDeadline(time.Time{})
			go func() { _, err := c.Read(b[:]); got <- err }()
			time.Sleep(20 * time.Millisecond)
			c.SetReadDeadline(time.Unix(1, 0))
			if err := <-got; !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("read interrupted by a past deadline: %v, want a timeout", err)
			}
			c.SetReadDeadline(time.Time{})
			p.Write([]byte{7})
			if n, err := c.Read(b[:]); n != 1 || b[0] != 7 || err != nil {
				t.Fatalf("read after clearing the deadline: %d %v %v", n, b, err)
			}
		})
	}
}

func TestCloseEndsWaitingReadAndWrite(t *testing.T) {
	fds := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	before := fds()
	c, _ := pair(t, 10*time.Microsecond)
	errs := make(chan error, 2)
	go func() { _, err := c.Read(make([]byte, 1)); errs <- err }()
	// The peer never reads: the write fills the socket and parks.
	go func() { _, err := c.Write(make([]byte, 64<<20)); errs <- err }()
	waitFor(t, "both park", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.parked) == 2
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("waiting operation ended with %v, want net.ErrClosed", err)
		}
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Write([]byte{1}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	// The socket, the parked duplicates and the listener's leftovers are
	// all closed; only the test's peer remains.
	if n := fds(); n > before+1 {
		t.Fatalf("%d descriptors open after Close, %d before: a descriptor leaked", n, before)
	}
}

func TestPeerClosedIsEOF(t *testing.T) {
	c, p := pair(t, 50*time.Microsecond)
	p.Close()
	if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("read from a closed peer: %d %v, want io.EOF", n, err)
	}
	var err error
	for range 100 { // the first write may still be accepted
		if _, err = c.Write(make([]byte, 1024)); err != nil {
			break
		}
	}
	if err == nil || errors.Is(err, net.ErrClosed) {
		t.Fatalf("write to a closed peer: %v, want a broken pipe", err)
	}
}
