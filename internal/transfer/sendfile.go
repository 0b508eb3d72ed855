package transfer

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SendFile sends data, which is f's bytes from off mapped into this
// process, over c's socket with sendfile(2): the kernel takes the pages of
// the shared arena straight into the socket, without a copy through user
// space. A connection without a descriptor (TLS) is written straight from
// the mapping instead. Flush first: the write buffer is not sent. Each
// step of at most stepSize bytes has its own write deadline.
func (c *Conn) SendFile(f *os.File, off int64, data []byte) error {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return writeMapped(c, data)
	}
	n := int64(len(data))
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

// writeMapped is the fallback for connections without a descriptor (TLS,
// tests wrapping the socket): the record layer encrypts straight from the
// arena's mapping, so the bytes are not first read into a 4 MiB buffer
// allocated per call.
func writeMapped(c *Conn, data []byte) error {
	for len(data) > 0 {
		step := data[:min(len(data), stepSize)]
		c.nc.SetWriteDeadline(time.Now().Add(c.Timeout))
		if _, err := c.nc.Write(step); err != nil {
			return err
		}
		data = data[len(step):]
	}
	return nil
}
