package spinread

import (
	"io"
	"net"
	"syscall"
	"time"
)

// Reader reads from a connection, polling for up to Spin before parking.
// It honours the connection's deadlines.
type Reader struct {
	rc   syscall.RawConn
	Spin time.Duration
}

// New wraps c, which must be a *net.UnixConn or *net.TCPConn.
func New(c interface {
	SyscallConn() (syscall.RawConn, error)
}, spin time.Duration) (*Reader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &Reader{rc: rc, Spin: spin}, nil
}

func (r *Reader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	var deadline time.Time
	err := r.rc.Read(func(fd uintptr) bool {
		for i := 0; ; i++ {
			k, err := syscall.Read(int(fd), b)
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				if r.Spin <= 0 {
					return false // park in the poller
				}
				if i%32 == 0 {
					now := time.Now()
					if deadline.IsZero() {
						deadline = now.Add(r.Spin)
					} else if now.After(deadline) {
						return false
					}
				}
				continue
			case err != nil:
				rerr = err
			case k == 0:
				rerr = io.EOF
			}
			n = k
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if rerr == io.EOF {
		return 0, io.EOF // compared with == by io.ReadFull and bufio
	}
	if rerr != nil {
		return 0, &net.OpError{Op: "read", Err: rerr}
	}
	return n, nil
}
