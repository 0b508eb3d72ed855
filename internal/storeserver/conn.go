package storeserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plasmastream/plasmastream/internal/spinconn"
	"github.com/plasmastream/plasmastream/internal/storewire"
)

// conn is one client connection: a goroutine reads and handles requests in
// order and writes their replies; replies completed elsewhere are written
// by short-lived goroutines under the same write lock.
type conn struct {
	s   *Server
	uc  *net.UnixConn // until the handshake is done
	c   *client
	r   *bufio.Reader // reads src
	src swapReader
	wmu sync.Mutex
	out []byte // reply buffer, reused; guarded by wmu
	wg  sync.WaitGroup

	smu    sync.Mutex
	sock   io.ReadWriteCloser // uc, then (see detach) the spinconn.Conn that replaced it
	closed bool               // guarded by smu

	cred unix.Ucred // the client process, as the kernel saw it connect
}

// swapReader reads whichever socket the connection has now, so that the
// bytes the bufio.Reader holds survive the change after the handshake.
type swapReader struct{ r io.Reader }

func (s *swapReader) Read(b []byte) (int, error) { return s.r.Read(b) }

func newConn(s *Server, uc *net.UnixConn) *conn {
	cn := &conn{s: s, uc: uc, sock: uc, src: swapReader{uc}, cred: peerCred(uc)}
	cn.r = bufio.NewReaderSize(&cn.src, 64<<10)
	cn.c = newClient(uint32(cn.cred.Pid))
	cn.c.send = cn.sendAsync
	cn.c.drop = cn.close
	return cn
}

// keepBuffer is the largest request or reply buffer a connection keeps
// between messages; larger ones (up to 64 MiB) are dropped after use.
const keepBuffer = 64 << 10

// keepRequest is the largest request buffer a connection keeps: room for
// a batch request as the clients send them (about 1 MiB), so that a
// client storing many small objects costs no allocation per request.
const keepRequest = 1<<20 + keepBuffer

// serverSpin is how long a connection polls for the client's next request
// before parking (see package spinconn for the measurements behind it).
var serverSpin = 50 * time.Microsecond

// close ends the connection; any goroutine may call it, any number of
// times.
func (cn *conn) close() {
	cn.smu.Lock()
	defer cn.smu.Unlock()
	if !cn.closed {
		cn.closed = true
		cn.sock.Close()
	}
}

// detach moves the connection, once its handshake is done, to a
// spinconn.Conn: requests are polled for out of the runtime's poller (see
// package spinconn). Only the serving goroutine calls it, before any
// other goroutine writes; if the descriptor cannot be duplicated the
// connection keeps parking in the poller.
func (cn *conn) detach() {
	cn.smu.Lock()
	defer cn.smu.Unlock()
	if cn.closed {
		return
	}
	sc, err := spinconn.Detach(cn.uc, serverSpin)
	if err != nil {
		cn.s.log.Debug("client connection stays in the poller", "err", err)
		return
	}
	cn.sock, cn.src.r = sc, sc
}

// serve runs the connection to its end and then returns everything the
// client held to the store.
func (cn *conn) serve() {
	log := cn.s.log.With("component", "client", "pid", cn.cred.Pid, "uid", cn.cred.Uid, "gid", cn.cred.Gid)
	cn.s.st.mu.Lock()
	cn.s.st.clients++
	cn.s.st.mu.Unlock()
	defer func() {
		cn.close()
		cn.s.st.disconnect(cn.c)
		cn.wg.Wait()
		log.Debug("client disconnected")
	}()
	// A client that connects and never says Hello must not hold a
	// descriptor and a goroutine for good.
	cn.uc.SetDeadline(time.Now().Add(cn.s.cfg.HandshakeTimeout))
	if err := cn.handshake(); err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, io.EOF):
			log.Debug("connection closed before hello") // e.g. a liveness probe
		case errors.As(err, &ne) && ne.Timeout():
			log.Warn("dropping client: no Hello exchange within the handshake timeout", "timeout", cn.s.cfg.HandshakeTimeout)
		default:
			log.Warn("handshake failed", "err", err)
		}
		return
	}
	cn.uc.SetDeadline(time.Time{})
	cn.detach()
	log.Debug("client connected")
	var buf []byte
	for {
		h, p, nb, err := storewire.ReadFrame(cn.r, buf, storewire.MaxRequestPayload)
		buf = nb
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				log.Warn("dropping client: unreadable frame", "err", err)
				if h.Flags != 0 || errors.Is(err, storewire.ErrFrameTooLarge) {
					// A bad header: tell the client why before hanging
					// up, as the stream cannot be resynchronised.
					cn.reply(storewire.TypeError, h.ReqID, storewire.ErrorReply{
						Code: storewire.CodeInvalidRequest, Message: err.Error()}.Append(nil))
				}
			}
			return
		}
		start := cn.s.metrics.now()
		t, reply, err := cn.handle(h, p)
		if cap(buf) > keepRequest {
			buf = nil // do not pin a large request's buffer while the client idles
		}
		if err != nil {
			var oe *opError
			if !errors.As(err, &oe) {
				oe = &opError{code: storewire.CodeInvalidRequest, msg: fmt.Sprintf("%s: %v", storewire.Type(h.Type), err)}
			}
			log.Debug("request failed", "type", storewire.Type(h.Type), "err", oe.msg)
			t, reply = storewire.TypeError, storewire.ErrorReply{Code: oe.code, Message: oe.msg}.Append(nil)
		} else if reply == nil {
			cn.s.metrics.request(storewire.Type(h.Type), start, false)
			continue // answered later (blocked Get) or by a stream (List pages)
		}
		werr := cn.reply(t, h.ReqID, reply)
		cn.s.metrics.request(storewire.Type(h.Type), start, err != nil)
		if werr != nil {
			return
		}
	}
}

// handshake reads Hello and answers with the arena descriptor attached.
func (cn *conn) handshake() error {
	h, p, _, err := storewire.ReadFrame(cn.r, nil, 64)
	var m storewire.Hello
	if err != nil {
		if errors.Is(err, io.EOF) {
			return err
		}
		err = fmt.Errorf("unreadable hello (is this a plasma store client?): %w", err)
	} else if storewire.Type(h.Type) != storewire.TypeHello {
		err = fmt.Errorf("first message is %s, want Hello", storewire.Type(h.Type))
	} else if err = m.Decode(p); err == nil && string(m.Magic[:]) != storewire.Magic {
		err = fmt.Errorf("bad magic %q", m.Magic[:])
	} else if err == nil && m.Version != storewire.Version {
		err = fmt.Errorf("protocol version %d not supported (this store speaks %d)", m.Version, storewire.Version)
		cn.reply(storewire.TypeError, h.ReqID, storewire.ErrorReply{Code: storewire.CodeVersion, Message: err.Error()}.Append(nil))
		return err
	}
	if err != nil {
		cn.reply(storewire.TypeError, h.ReqID, storewire.ErrorReply{Code: storewire.CodeInvalidRequest, Message: err.Error()}.Append(nil))
		return err
	}
	a := cn.s.arena
	payload := storewire.HelloReply{Version: storewire.Version, ArenaSize: a.Size, Capacity: cn.s.Capacity()}.Append(nil)
	frame := storewire.AppendFrame(nil, storewire.TypeHello|storewire.ReplyBit, h.ReqID, payload)
	oob := syscall.UnixRights(int(a.File.Fd()))
	n, oobn, err := cn.uc.WriteMsgUnix(frame, oob, nil)
	if err != nil {
		return fmt.Errorf("send arena descriptor: %w", err)
	}
	if n != len(frame) || oobn != len(oob) {
		return fmt.Errorf("short handshake write (%d/%d bytes, %d/%d control)", n, len(frame), oobn, len(oob))
	}
	return nil
}

// reply writes one frame.
func (cn *conn) reply(t storewire.Type, reqID uint32, payload []byte) error {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	cn.out = storewire.AppendFrame(cn.out[:0], t, reqID, payload)
	_, err := cn.sock.Write(cn.out)
	if cap(cn.out) > keepBuffer {
		cn.out = nil // do not pin a large reply's buffer forever
	}
	return err
}

// write sends frames already encoded.
func (cn *conn) write(frames []byte) error {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	_, err := cn.sock.Write(frames)
	return err
}

// sendAsync writes a reply from outside the connection's goroutine without
// blocking the caller, which may hold the state mutex.
func (cn *conn) sendAsync(t storewire.Type, reqID uint32, payload []byte) {
	cn.wg.Add(1)
	go func() {
		defer cn.wg.Done()
		if cn.reply(t, reqID, payload) != nil {
			cn.close()
		}
	}()
}
