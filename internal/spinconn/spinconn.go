package spinconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is a connected unix stream socket out of the runtime's poller (see
// the package comment). Read, Write, SetReadDeadline and Close may be
// called from any goroutine; reads are not meant to run concurrently with
// each other, nor writes with each other.
type Conn struct {
	fd   int
	spin time.Duration
	rdl  atomic.Int64 // read deadline in Unix nanoseconds; 0: none

	mu      sync.Mutex
	refs    int  // Reads and Writes running on fd
	closing bool // Close was called; fd is closed when refs reaches 0
	parked  map[*os.File]bool
}

// Detach takes uc's socket out of the runtime's poller: the Conn reads and
// writes a duplicate of its descriptor, polling for up to spin before
// parking, and uc is closed. On an error uc is left as it was.
func Detach(uc *net.UnixConn, spin time.Duration) (*Conn, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("dup", derr)
	}
	// The duplicate shares the open file description, and so its
	// O_NONBLOCK flag, which the runtime set; closing uc removes the
	// description from the poller.
	uc.Close()
	return &Conn{fd: fd, spin: spin, parked: map[*os.File]bool{}}, nil
}

func opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "unix", Err: err}
}

// acquire registers a Read or Write on fd; false if the Conn is closed.
func (c *Conn) acquire() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.refs++
	return true
}

func (c *Conn) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refs--; c.refs == 0 && c.closing {
		unix.Close(c.fd)
	}
}

func (c *Conn) closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// Read reads into b, polling for up to the spin time and then parking in
// the poller; it honours the read deadline.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if !c.acquire() {
		return 0, opError("read", net.ErrClosed)
	}
	defer c.release()
	var parkAt time.Time
	for i := 0; ; i++ {
		n, err := unix.Read(c.fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != unix.EAGAIN {
			return c.readResult(n, err)
		}
		if i%32 != 0 {
			continue
		}
		now := time.Now()
		if d := c.rdl.Load(); d != 0 && now.UnixNano() >= d {
			return 0, opError("read", os.ErrDeadlineExceeded)
		}
		if parkAt.IsZero() {
			parkAt = now.Add(c.spin)
		} else if now.After(parkAt) {
			break
		}
	}
	var n int
	var rerr error
	err := c.park(false, func(fd int) bool {
		n, rerr = retry(func() (int, error) { return unix.Read(fd, b) })
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, c.parkError("read", err)
	}
	return c.readResult(n, rerr)
}

// retry runs a system call again while it is interrupted.
func retry(call func() (int, error)) (int, error) {
	for {
		if n, err := call(); err != unix.EINTR {
			return n, err
		}
	}
}

// readResult turns a read(2) outcome into Read's.
func (c *Conn) readResult(n int, err error) (int, error) {
	switch {
	case c.closed():
		return 0, opError("read", net.ErrClosed)
	case err != nil:
		return 0, opError("read", os.NewSyscallError("read", err))
	case n == 0:
		return 0, io.EOF // compared with == by io.ReadFull and bufio
	}
	return n, nil
}

// Write writes all of b, parking in the poller while the socket is full.
func (c *Conn) Write(b []byte) (int, error) {
	if !c.acquire() {
		return 0, opError("write", net.ErrClosed)
	}
	defer c.release()
	done := 0
	send := func(fd int) (int, error) {
		return retry(func() (int, error) { return unix.SendmsgN(fd, b[done:], nil, nil, unix.MSG_NOSIGNAL) })
	}
	for done < len(b) {
		n, err := send(c.fd)
		if err == unix.EAGAIN {
			if perr := c.park(true, func(fd int) bool {
				n, err = send(fd)
				return err != unix.EAGAIN
			}); perr != nil {
				return done, c.parkError("write", perr)
			}
		}
		switch {
		case c.closed():
			return done, opError("write", net.ErrClosed)
		case err != nil:
			return done, opError("write", os.NewSyscallError("write", err))
		}
		done += n
	}
	return done, nil
}

// park waits in the runtime's poller, on a duplicate of the descriptor
// registered for the occasion, until try (run on that duplicate) reports
// done. A read park honours the read deadline.
func (c *Conn) park(write bool, try func(fd int) bool) error {
	fd, err := unix.FcntlInt(uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("dup", err)
	}
	// Non-blocking, so os.NewFile registers it with the poller.
	f := os.NewFile(uintptr(fd), "spinconn")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.parked[f] = write
	if d := c.rdl.Load(); d != 0 && !write {
		f.SetReadDeadline(time.Unix(0, d))
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.parked, f)
		c.mu.Unlock()
	}()
	op := func(fd uintptr) bool { return try(int(fd)) }
	if write {
		return rc.Write(op)
	}
	return rc.Read(op)
}

// parkError is the error of a park that failed: closed, timed out, or the
// system's.
func (c *Conn) parkError(op string, err error) error {
	switch {
	case c.closed() || errors.Is(err, net.ErrClosed):
		return opError(op, net.ErrClosed)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return opError(op, os.ErrDeadlineExceeded)
	}
	return opError(op, err)
}

// SetReadDeadline sets the time after which Read fails with an error
// whose Timeout() is true (the zero time: never). It applies to a Read
// already waiting.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return opError("set deadline", net.ErrClosed)
	}
	var d int64
	if !t.IsZero() {
		d = max(t.UnixNano(), 1)
	}
	c.rdl.Store(d)
	for f, write := range c.parked {
		if !write {
			f.SetReadDeadline(t)
		}
	}
	return nil
}

// Close shuts the socket down, which ends a Read or Write waiting on it
// with net.ErrClosed, and closes the descriptor once none is running.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return opError("close", net.ErrClosed)
	}
	c.closing = true
	unix.Shutdown(c.fd, unix.SHUT_RDWR)
	for f := range c.parked {
		f.SetDeadline(time.Unix(1, 0)) // in case the shutdown wakes nothing
	}
	if c.refs == 0 {
		unix.Close(c.fd)
	}
	return nil
}
