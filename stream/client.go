package stream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/tracing"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/store"
)

// ObjectID names an object: 20 bytes, 40 hex digits.
type ObjectID = store.ObjectID

// ParseObjectID parses 40 hex digits.
func ParseObjectID(s string) (ObjectID, error) { return store.ParseObjectID(s) }

// Limits of the protocol.
const (
	MaxObjectsPerPeerRequest = streamwire.MaxObjectsPerPeerRequest
	MaxPeerRequests          = streamwire.MaxPeerRequests
	MaxDataSize              = streamwire.MaxDataSize
	MaxMetadataSize          = streamwire.MaxMetadataSize
)

// Client is a connection to a plasma-stream-server.
type Client struct {
	addr string
	node string
	opt  options
	mu   sync.Mutex
	c    *transfer.Conn
	dead error
}

// Option configures Connect.
type Option func(*options)

type options struct {
	timeout time.Duration
	name    string
	key     *Identity
	trusted func(PublicKey) bool
	caFiles *trust.CAFiles // WithTLSFiles
	tls     *tls.Config    // made by Connect from key and trusted, or caFiles
}

// WithTimeout sets the deadline of each network step (default 30 s).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithName names this client in the server's logs (default: host/pid).
func WithName(name string) Option { return func(o *options) { o.name = name } }

// DefaultPort is the TCP port plasma-stream-server listens on unless told
// otherwise, and DefaultAddr the server every tool talks to by default.
const (
	DefaultPort = streamwire.DefaultPort
	DefaultAddr = streamwire.DefaultAddr
)

// Connect connects to the stream server at addr (host:port; IPv6 as
// [::1]:2021).
func Connect(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	o := options{timeout: transfer.DefaultTimeout}
	if h, err := os.Hostname(); err == nil {
		o.name = fmt.Sprintf("%s/%d", h, os.Getpid())
	}
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	return connect(ctx, addr, streamwire.RoleClient, o)
}

func connect(ctx context.Context, addr string, role streamwire.Role, o options) (*Client, error) {
	c, hr, err := transfer.Dial(ctx, addr, role, o.name, o.timeout, o.tls)
	if err != nil {
		return nil, wrapErr(addr, err)
	}
	return &Client{addr: addr, node: hr.Node, opt: o, c: c}, nil
}

// wrapErr names the server in an error and keeps refusals matchable.
func wrapErr(addr string, err error) error {
	var er *streamwire.ErrorReply
	if errors.As(err, &er) {
		return &Error{Status: Status(er.Status), Msg: fmt.Sprintf("%s: %s", addr, er.Message)}
	}
	return fmt.Errorf("stream server %s: %w", addr, err)
}

// Node is the server's node name.
func (c *Client) Node() string { return c.node }

// Addr is the server's address.
func (c *Client) Addr() string { return c.addr }

// Err reports why the connection can no longer be used (a request failed
// in a way that left it out of step), or nil while it can. A client whose
// Err is set must be replaced by a new Connect.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// do runs one request exclusively on the connection. A connection that
// failed mid-request is not reused.
func (c *Client) do(ctx context.Context, f func(*transfer.Conn) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		return c.dead
	}
	stop := c.c.CloseOnDone(ctx)
	var err error
	if p := tracing.ParentOf(ctx); p != nil {
		// The caller's trace goes on at the server (and the nodes it asks).
		err = c.c.WriteFrame(streamwire.TypeTrace, p)
	}
	if err == nil {
		err = f(c.c)
	}
	stop()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	var se *Error
	if err != nil && !errors.As(err, &se) {
		c.dead = fmt.Errorf("connection to %s unusable after: %w", c.addr, err)
		c.c.Close()
		return wrapErr(c.addr, err)
	}
	return err
}

// StoreState is whether a server's store is up, and since when (the last
// change: the server connected, lost the store or reconnected to it).
type StoreState struct {
	Up    bool      `json:"up"`
	Since time.Time `json:"since"`
}

func storeState(s streamwire.StoreState) StoreState {
	return StoreState{Up: s.Up, Since: time.Unix(0, s.SinceNs)}
}

// unavailable is the error of a server whose store is down.
func (c *Client) unavailable(node string, s StoreState) error {
	return &Error{Status: StatusStoreUnavailable, Msg: fmt.Sprintf("%s: the store of %s is unavailable since %s (%s ago); the server is reconnecting",
		c.addr, node, s.Since.Format(time.RFC3339), time.Since(s.Since).Round(time.Second))}
}

// Ping measures a round trip to the server. When the server answers but
// its store is down, the round trip comes with an *Error of status
// StatusStoreUnavailable (PingStore tells the store's state without one).
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	rtt, st, err := c.PingStore(ctx)
	if err == nil && !st.Up {
		err = c.unavailable(c.node, st)
	}
	return rtt, err
}

// PingStore measures a round trip to the server and reports its store's
// state.
func (c *Client) PingStore(ctx context.Context) (time.Duration, StoreState, error) {
	var rtt time.Duration
	var st StoreState
	err := c.do(ctx, func(tc *transfer.Conn) error {
		start := time.Now()
		nonce := uint64(start.UnixNano())
		if err := tc.Send(streamwire.TypePing, streamwire.Ping{Nonce: nonce}.Append(nil)); err != nil {
			return err
		}
		var p streamwire.PingReply
		if err := tc.Expect(streamwire.TypePing|streamwire.ReplyBit, &p); err != nil {
			return replyErr(c.addr, err)
		}
		if p.Nonce != nonce {
			return &transfer.ProtocolError{Msg: "PING answered with another nonce"}
		}
		rtt, st = time.Since(start), storeState(p.Store)
		return nil
	})
	return rtt, st, err
}

// ServerStat describes a server and its store.
type ServerStat struct {
	Node        string        `json:"node"`
	Version     string        `json:"version"`
	Uptime      time.Duration `json:"uptime"`
	Connections int           `json:"connections"`
	Store       store.Stats   `json:"store"` // zero while the store is down
	StoreState  StoreState    `json:"store_state"`
}

// Stat returns the server's identity and its store's figures. When the
// store is down the server's part is filled in and the error is an *Error
// of status StatusStoreUnavailable.
func (c *Client) Stat(ctx context.Context) (ServerStat, error) {
	var out ServerStat
	err := c.do(ctx, func(tc *transfer.Conn) error {
		if err := tc.Send(streamwire.TypeStat, nil); err != nil {
			return err
		}
		var r streamwire.StatReply
		if err := tc.Expect(streamwire.TypeStat|streamwire.ReplyBit, &r); err != nil {
			return replyErr(c.addr, err)
		}
		out = ServerStat{Node: r.Node, Version: r.Version, Uptime: time.Duration(r.UptimeNs),
			Connections: int(r.Connections), Store: store.Stats(r.Store), StoreState: storeState(r.StoreState)}
		return nil
	})
	if err == nil && !out.StoreState.Up {
		err = c.unavailable(out.Node, out.StoreState)
	}
	return out, err
}

// List describes every object in the server's store.
func (c *Client) List(ctx context.Context) ([]store.ObjectInfo, error) {
	var out []store.ObjectInfo
	err := c.do(ctx, func(tc *transfer.Conn) error {
		if err := tc.Send(streamwire.TypeList, nil); err != nil {
			return err
		}
		for {
			t, p, err := tc.ReadFrame(streamwire.MaxControlFrame)
			if err != nil {
				return err
			}
			if t == streamwire.TypeError {
				var e streamwire.ErrorReply
				e.Decode(p)
				return &Error{Status: Status(e.Status), Msg: fmt.Sprintf("%s: %s", c.addr, e.Message)}
			}
			if t != streamwire.TypeList|streamwire.ReplyBit {
				return &transfer.ProtocolError{Msg: fmt.Sprintf("got %s in a LIST reply", t)}
			}
			infos, more, err := store.UnmarshalListPage(p)
			if err != nil {
				return &transfer.ProtocolError{Msg: err.Error()}
			}
			out = append(out, infos...)
			if !more {
				return nil
			}
		}
	})
	return out, err
}

// replyErr turns an error reply into an *Error naming the server.
func replyErr(addr string, err error) error {
	var er *streamwire.ErrorReply
	if errors.As(err, &er) {
		return &Error{Status: Status(er.Status), Msg: fmt.Sprintf("%s: %s", addr, er.Message)}
	}
	return err
}
