package transfer

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SendFile sends n bytes of f from off over c's socket with sendfile(2):
// the kernel takes the pages of the shared arena straight into the socket,
// without a copy through user space. Flush first: the write buffer is not
// sent. Each step of at most stepSize bytes has its own write deadline.
func (c *Conn) SendFile(f *os.File, off, n int64) error {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return writeFromFile(c, f, off, n)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	src := int(f.Fd())
	for n > 0 {
		step := min(n, stepSize)
		c.nc.SetWriteDeadline(time.Now().Add(c.Timeout))
		var serr error
		err := rc.Write(func(fd uintptr) bool {
			for step > 0 {
				k, err := unix.Sendfile(int(fd), src, &off, int(step))
				if k > 0 {
					step -= int64(k)
					n -= int64(k)
				}
				switch {
				case errors.Is(err, unix.EAGAIN):
					return false // wait until the socket is writable
				case errors.Is(err, unix.EINTR):
				case err != nil:
					serr = err
					return true
				case k == 0:
					serr = fmt.Errorf("sendfile made no progress at offset %d", off)
					return true
				}
			}
			return true
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
	}
	return nil
}

// writeFromFile is the fallback for connections without a descriptor
// (tests wrapping the socket): pread and write.
func writeFromFile(c *Conn, f *os.File, off, n int64) error {
	buf := make([]byte, min(n, stepSize))
	for n > 0 {
		k, err := f.ReadAt(buf[:min(n, int64(len(buf)))], off)
		if k > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(c.Timeout))
			if _, werr := c.nc.Write(buf[:k]); werr != nil {
				return werr
			}
			off += int64(k)
			n -= int64(k)
		}
		if err != nil && n > 0 {
			return err
		}
	}
	return nil
}
