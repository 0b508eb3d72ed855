package streamserver

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/plasmastream/plasmastream/internal/activity"
	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/tracing"
	"github.com/plasmastream/plasmastream/internal/transfer"
)

// serveConn runs one connection: the handshake, then requests one at a
// time until the peer hangs up, idles too long or breaks the protocol.
func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	log := s.log.With("component", "conn", "peer", nc.RemoteAddr().String())
	nc, pk, err := s.secure(ctx, nc)
	if err != nil {
		s.metrics.notPermitted.Inc()
		log.Info("peer refused", "err", err)
		return
	}
	if pk != nil && pk.cert != nil {
		log = log.With("cert", pk.cert.Name, "role", pk.cert.Role.String())
	} else if pk != nil {
		if e, ok := s.lookupKey(pk.key); ok {
			log = log.With("key", e.Name, "role", e.Role.String())
		}
	}
	c := transfer.NewConn(nc, s.cfg.IOTimeout)
	s.metrics.connections.Inc()
	defer s.metrics.connections.Dec()
	hello, err := s.handshake(c)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			log.Warn("handshake failed", "err", err)
		}
		return
	}
	log = log.With("name", hello.Name)
	var parent []byte     // a TRACE frame's context, for the next request
	var wantProgress bool // a WANT-PROGRESS frame came: the next FETCH or PULL reports progress
	for {
		req, err := s.readRequest(c, s.cfg.IdleTimeout)
		if r, ok := isRefusal(err); ok {
			// Over a limit before the payload was read: say which, then
			// hang up (the payload is still in the stream).
			log.Info("request refused", "type", req.t, "err", r.msg)
			s.metrics.request(req.t.String(), r.status)
			if r.send(c) == nil {
				r.drain(c)
			}
			return
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return
			}
			status := streamwire.StatusMalformed
			if isTimeout(err) {
				status = streamwire.StatusTimeout
			}
			log.Debug("connection ended", "err", err)
			s.metrics.request("read", status)
			// A bad or missing frame cannot be skipped: say why, hang up.
			c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: status, Message: fmt.Sprintf("%s: closing the connection: %v", s.cfg.NodeName, err)}.Append(nil))
			return
		}
		switch req.t {
		case streamwire.TypeTrace: // no reply: for the next request
			s.budget.give(req.cost)
			parent = req.p
			continue
		case streamwire.TypeWantProgress:
			s.budget.give(req.cost)
			wantProgress = true
			continue
		}
		rctx, span := s.startSpan(ctx, parent, req, hello.Name)
		if wantProgress {
			rctx = s.progressSink(rctx, c, req)
		}
		parent, wantProgress = nil, false
		if r, gone := s.permit(pk, req.t); r != nil {
			// Refused before anything moves; the request was read whole,
			// so the connection stays usable (unless the key is gone).
			s.budget.give(req.cost)
			s.metrics.notPermitted.Inc()
			s.metrics.request(req.t.String(), r.Status)
			log.Info("request not permitted", "type", req.t, "err", r.Message)
			tracing.End(span, r.Status.String(), nil)
			if c.Send(streamwire.TypeError, r.Append(nil)) != nil || gone {
				return
			}
			continue
		}
		status, err := s.handle(rctx, c, req)
		tracing.End(span, status.String(), err)
		s.budget.give(req.cost)
		s.metrics.request(req.t.String(), status)
		if err != nil {
			log.Info("request failed", "type", req.t, "err", err)
			s.activity.Error(req.t.String()+" from "+nc.RemoteAddr().String(), err.Error())
			return
		}
	}
}

// relayWait is how long a RELAY waits for the object's own transfer to
// begin here (the links of a broadcast chain are requested all at once).
const relayWait = 10 * time.Second

// maxHello bounds a HELLO frame (a 255-byte name makes 266 bytes).
const maxHello = 512

// handshake reads Hello and accepts or refuses the connection.
func (s *Server) handshake(c *transfer.Conn) (streamwire.Hello, error) {
	var h streamwire.Hello
	refuse := func(st streamwire.Status, msg string) (streamwire.Hello, error) {
		c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: st, Message: msg}.Append(nil))
		return h, errors.New(msg)
	}
	t, p, err := c.ReadFrame(maxHello)
	if errors.Is(err, io.EOF) {
		return h, err
	} else if err != nil {
		return refuse(streamwire.StatusMalformed, fmt.Sprintf("not a Plasma Stream client (%v): the first message must be HELLO", err))
	}
	if t == streamwire.TypeHello && len(p) >= 6 && string(p[:4]) == streamwire.Magic && binary.LittleEndian.Uint16(p[4:]) != streamwire.Version {
		// Checked before the rest: a later version's HELLO may be longer.
		return refuse(streamwire.StatusVersionMismatch, fmt.Sprintf("protocol version %d not supported; %s speaks version %d", binary.LittleEndian.Uint16(p[4:]), s.cfg.NodeName, streamwire.Version))
	}
	if t != streamwire.TypeHello || h.Decode(p) != nil || string(h.Magic[:]) != streamwire.Magic {
		return refuse(streamwire.StatusMalformed, "not a Plasma Stream client: the first message must be HELLO")
	}
	if h.Version != streamwire.Version {
		return refuse(streamwire.StatusVersionMismatch, fmt.Sprintf("protocol version %d not supported; %s speaks version %d", h.Version, s.cfg.NodeName, streamwire.Version))
	}
	return h, c.Send(streamwire.TypeHello|streamwire.ReplyBit, streamwire.HelloReply{Version: streamwire.Version, Node: s.cfg.NodeName}.Append(nil))
}

// handle answers one request. A returned error ends the connection.
func (s *Server) handle(ctx context.Context, c *transfer.Conn, req request) (streamwire.Status, error) {
	t, p := req.t, req.p
	reply := t | streamwire.ReplyBit
	malformed := func(err error) (streamwire.Status, error) {
		msg := fmt.Sprintf("malformed %s request: %v", t, err)
		return streamwire.StatusMalformed, c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: streamwire.StatusMalformed, Message: msg}.Append(nil))
	}
	switch t {
	case streamwire.TypePing:
		var m streamwire.Ping
		if err := m.Decode(p); err != nil {
			return malformed(err)
		}
		return streamwire.StatusOK, c.Send(reply, streamwire.PingReply{Nonce: m.Nonce, Store: s.storeState()}.Append(nil))
	case streamwire.TypeStat, streamwire.TypeList:
		if len(p) != 0 {
			return malformed(fmt.Errorf("%d unexpected payload bytes", len(p)))
		}
		if t == streamwire.TypeList {
			return s.list(ctx, c)
		}
		return s.stat(ctx, c)
	case streamwire.TypeCopy, streamwire.TypeTake, streamwire.TypeRelay:
		m := req.ids
		kind := map[streamwire.Type]streamwire.Kind{streamwire.TypeCopy: streamwire.KindCopy,
			streamwire.TypeTake: streamwire.KindTake, streamwire.TypeRelay: streamwire.KindRelay}[t]
		sc, err := s.useStore()
		if err != nil {
			return sendErr(c, streamwire.TypeCopyBegin, err) // the reply a COPY expects first
		}
		defer sc.release()
		start := time.Now()
		var sent transfer.Stats
		at := s.activity.Begin(activity.Out, "send "+kind.String(), c.Peer, len(m.IDs))
		err = transfer.Send(ctx, c, sc.st, kind, m.IDs, transfer.SendOptions{GetTimeout: s.cfg.PlasmaTimeout, Stats: s.sendStats(&sent),
			Partials: sc.partials, RelayWait: relayWait, Expect: at.Expect, Progress: at.Add})
		at.End(nil, err)
		s.metrics.duration.WithLabelValues("send").Observe(time.Since(start).Seconds())
		s.transferOut(c.Peer, kind, m.IDs, start, &sent, err)
		if err != nil {
			return streamwire.StatusConnectionLost, fmt.Errorf("%s of %d objects to %s: %w", kind, len(m.IDs), c.Peer, err)
		}
		return streamwire.StatusOK, nil
	case streamwire.TypeRange:
		var m streamwire.Range
		if err := m.Decode(p); err != nil {
			return malformed(err)
		}
		sc, err := s.useStore()
		if err != nil {
			er := storeErr(err)
			return er.Status, c.Send(streamwire.TypeRange|streamwire.ReplyBit, streamwire.RangeReply{Status: er.Status, Message: er.Message}.Append(nil))
		}
		defer sc.release()
		if err := transfer.ServeRange(ctx, c, sc.st, &m, transfer.RangeOptions{Stats: &s.stats, Partials: sc.partials, Wait: relayWait}); err != nil {
			return streamwire.StatusConnectionLost, fmt.Errorf("RANGE of object %x to %s: %w", m.ID[:], c.Peer, err)
		}
		return streamwire.StatusOK, nil
	case streamwire.TypeDeleteLocal:
		m := req.ids
		if st, msg := streamwire.ValidateIDs(m.IDs, nil); st != streamwire.StatusOK {
			return st, c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: st, Message: "DELETE rejected: " + msg}.Append(nil))
		}
		b, _ := json.Marshal(s.node.DeleteLocal(ctx, m.IDs))
		return streamwire.StatusOK, c.Send(reply, streamwire.JSON{Body: b}.Append(nil))
	case streamwire.TypePull, streamwire.TypeFetch, streamwire.TypeNodes, streamwire.TypeLocate, streamwire.TypePrefetch, streamwire.TypeDeleteAll, streamwire.TypeGroup:
		return s.node.Handle(ctx, c, t, p) // what involves other nodes
	case streamwire.TypeActivity:
		if len(p) != 0 {
			return malformed(fmt.Errorf("%d unexpected payload bytes", len(p)))
		}
		return s.activityReply(c)
	case streamwire.TypeSync:
		sc, err := s.useStore()
		if err != nil {
			er := storeErr(err)
			return er.Status, c.Send(streamwire.TypeSyncResult, streamwire.SyncDone{Status: er.Status, Message: "SYNC rejected: " + er.Message}.Append(nil))
		}
		defer sc.release() // one store connection serves the whole SYNC
		return s.sync(ctx, c, sc, req.sync)
	}
	msg := fmt.Sprintf("unknown request type %d", uint16(t))
	return streamwire.StatusMalformed, c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: streamwire.StatusMalformed, Message: msg}.Append(nil))
}

// sendErr answers a request with a frame of type t (Error, or CopyBegin
// for COPY/TAKE) carrying the store's error.
func sendErr(c *transfer.Conn, t streamwire.Type, err error) (streamwire.Status, error) {
	er := storeErr(err)
	return er.Status, c.Send(t, er.Append(nil))
}

// storeErr is the error reply err carries (a store unavailable), else a
// store failure.
func storeErr(err error) *streamwire.ErrorReply {
	return streamwire.ReplyFor(err, streamwire.StatusStoreError)
}

// stat answers STAT: the server, its store's figures and whether the store
// is up (a STAT while it is down still answers, with zero figures).
func (s *Server) stat(ctx context.Context, c *transfer.Conn) (streamwire.Status, error) {
	r := streamwire.StatReply{Node: s.cfg.NodeName, Version: cliutil.Version, UptimeNs: int64(time.Since(s.start)),
		Connections: uint32(s.active.Load())}
	if sc, err := s.useStore(); err == nil {
		sctx, cancel := context.WithTimeout(ctx, s.cfg.IOTimeout)
		st, err := sc.st.Stats(sctx)
		cancel()
		sc.release()
		if err != nil {
			return s.storeFailed(c, err)
		}
		r.Store = storewire.StatsReply(st)
	}
	r.StoreState = s.storeState()
	return streamwire.StatusOK, c.Send(streamwire.TypeStat|streamwire.ReplyBit, r.Append(nil))
}

func (s *Server) storeFailed(c *transfer.Conn, err error) (streamwire.Status, error) {
	msg := fmt.Sprintf("the store of %s failed: %v", s.cfg.NodeName, err)
	return streamwire.StatusStoreError, c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: streamwire.StatusStoreError, Message: msg}.Append(nil))
}

// list forwards the store's List pages as they come, undecoded: a LIST
// page is the store protocol's (docs/stream-protocol.md).
func (s *Server) list(ctx context.Context, c *transfer.Conn) (streamwire.Status, error) {
	sc, err := s.useStore()
	if err != nil {
		return sendErr(c, streamwire.TypeError, err)
	}
	defer sc.release()
	lctx, cancel := context.WithTimeout(ctx, s.cfg.IOTimeout)
	defer cancel()
	var lost error // the client's connection failed: nothing more to send
	err = sc.st.ListPages(lctx, func(page []byte) error {
		lost = c.Send(streamwire.TypeList|streamwire.ReplyBit, page)
		return lost
	})
	switch {
	case lost != nil:
		return streamwire.StatusConnectionLost, lost
	case err != nil:
		return s.storeFailed(c, err)
	}
	return streamwire.StatusOK, nil
}
