package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// dial connects, performs the Hello exchange and returns the arena
// descriptor the store sent with its reply.
func dial(ctx context.Context, socket string, cfg connectConfig) (*mux, *os.File, storewire.HelloReply, error) {
	var hr storewire.HelloReply
	if err := cfg.checkOwner(socket); err != nil {
		return nil, nil, hr, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, nil, hr, fmt.Errorf("connect to store at %s (is plasma-store-server running?): %w", socket, err)
	}
	uc := c.(*net.UnixConn)
	if err := cfg.checkPeer(uc, socket); err != nil {
		uc.Close()
		return nil, nil, hr, err
	}
	if dl, ok := ctx.Deadline(); ok {
		uc.SetDeadline(dl)
	} else {
		uc.SetDeadline(time.Now().Add(30 * time.Second))
	}
	f, hr, err := handshake(uc)
	if err != nil {
		uc.Close()
		return nil, nil, hr, fmt.Errorf("store at %s: %w", socket, err)
	}
	uc.SetDeadline(time.Time{})
	return newMux(uc, cfg.park), f, hr, nil
}

func handshake(uc *net.UnixConn) (*os.File, storewire.HelloReply, error) {
	var hr storewire.HelloReply
	hello := storewire.Hello{Version: storewire.Version}
	copy(hello.Magic[:], storewire.Magic)
	if _, err := uc.Write(storewire.AppendFrame(nil, storewire.TypeHello, 1, hello.Append(nil))); err != nil {
		return nil, hr, fmt.Errorf("send hello: %w", err)
	}
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, hr, fmt.Errorf("read hello reply: %w", err)
	}
	var f *os.File
	if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, cm := range cmsgs {
			if fds, err := unix.ParseUnixRights(&cm); err == nil {
				for _, fd := range fds {
					if f == nil {
						f = os.NewFile(uintptr(fd), "plasma-arena")
					} else {
						unix.Close(fd)
					}
				}
			}
		}
	}
	// The reply may arrive in more than one piece; the descriptor rides
	// on the first.
	for n < storewire.HeaderSize {
		k, err := uc.Read(buf[n:])
		if err != nil {
			return closeFile(f), hr, fmt.Errorf("read hello reply: %w", err)
		}
		n += k
	}
	h, err := storewire.ParseHeader(buf[:n], 200)
	if err != nil {
		return closeFile(f), hr, err
	}
	total := storewire.HeaderSize + int(h.Length)
	if n < total {
		if _, err := io.ReadFull(uc, buf[n:total]); err != nil {
			return closeFile(f), hr, fmt.Errorf("read hello reply: %w", err)
		}
	}
	p := buf[storewire.HeaderSize:total]
	if storewire.Type(h.Type) == storewire.TypeError {
		var e storewire.ErrorReply
		if err := e.Decode(p); err != nil {
			return closeFile(f), hr, err
		}
		return closeFile(f), hr, &Error{Code: e.Code, Message: e.Message}
	}
	if err := hr.Decode(p); err != nil {
		return closeFile(f), hr, err
	}
	if f == nil {
		return nil, hr, errors.New("store sent no arena descriptor")
	}
	return f, hr, nil
}

func closeFile(f *os.File) *os.File {
	if f != nil {
		f.Close()
	}
	return nil
}
