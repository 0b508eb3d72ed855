package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/store"
)

// Kind is COPY (the source keeps its objects) or TAKE (the source deletes
// each object once the receiver has sealed it; best effort).
type Kind = streamwire.Kind

const (
	Copy = streamwire.KindCopy
	Take = streamwire.KindTake
	// Relay is a COPY the source may serve while it is itself still
	// receiving the object, waiting up to 10 s for that transfer to
	// begin: a chain of Relays broadcasts in about the time of one copy.
	Relay = streamwire.KindRelay
)

// PeerRequest asks for Objects from the server at From.
type PeerRequest struct {
	Kind    Kind
	From    string // host:port of a plasma-stream-server; IPv6 as [::1]:2021
	Objects []ObjectID
}

// Status is the result of a request, peer request or object.
type Status = streamwire.Status

// Statuses callers act on (see the protocol document for all).
const (
	StatusOK                  = streamwire.StatusOK
	StatusAlreadyPresent      = streamwire.StatusAlreadyPresent
	StatusNotFound            = streamwire.StatusNotFound
	StatusStoreFull           = streamwire.StatusStoreFull
	StatusPeerUnreachable     = streamwire.StatusPeerUnreachable
	StatusIntegrityFailure    = streamwire.StatusIntegrityFailure
	StatusNoObjects           = streamwire.StatusNoObjects
	StatusTooManyObjects      = streamwire.StatusTooManyObjects
	StatusNoPeerRequests      = streamwire.StatusNoPeerRequests
	StatusTooManyPeerRequests = streamwire.StatusTooManyPeerRequests
	StatusDuplicateID         = streamwire.StatusDuplicateID
	StatusServerBusy          = streamwire.StatusServerBusy
	StatusConnectionLost      = streamwire.StatusConnectionLost
	StatusNotAttempted        = streamwire.StatusNotAttempted
	StatusStoreUnavailable    = streamwire.StatusStoreUnavailable // the server's store is down; it reconnects by itself
	StatusRequestTooLarge     = streamwire.StatusRequestTooLarge  // the request does not fit in the server's --request-memory
	StatusNotPermitted        = streamwire.StatusNotPermitted     // the server does not serve this peer (started without keys: loopback only)
)

// ObjectResult is what became of one object.
type ObjectResult struct {
	ID              ObjectID `json:"id"`
	Status          Status   `json:"-"`
	Bytes           uint64   `json:"bytes"`
	DeletedAtSource bool     `json:"deleted_at_source,omitempty"`
	Message         string   `json:"message,omitempty"` // names the object, the peer and the cause
}

// OK reports whether the object is at the destination (copied now or
// already present).
func (r ObjectResult) OK() bool { return r.Status.Success() }

// PeerResult is what became of one peer request.
type PeerResult struct {
	Kind     Kind           `json:"-"`
	From     string         `json:"from"`
	Status   Status         `json:"-"`
	Message  string         `json:"message,omitempty"`
	Bytes    uint64         `json:"bytes"`
	Duration time.Duration  `json:"duration"`
	Objects  []ObjectResult `json:"objects"`
}

// SyncResult is the whole outcome of a SYNC.
type SyncResult struct {
	Status   Status        `json:"-"`
	Message  string        `json:"message,omitempty"`
	Bytes    uint64        `json:"bytes"`
	Objects  uint64        `json:"objects"` // objects now at the destination
	Duration time.Duration `json:"duration"`
	Peers    []PeerResult  `json:"peers"`
}

// Failed lists every object that did not arrive, across peer requests.
func (r *SyncResult) Failed() []ObjectResult {
	var out []ObjectResult
	for _, p := range r.Peers {
		for _, o := range p.Objects {
			if !o.OK() {
				out = append(out, o)
			}
		}
	}
	return out
}

// Error is a failure with a protocol status: a refused request (a limit,
// server busy...) or a SYNC in which something failed.
type Error struct {
	Status Status
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Progress reports a running SYNC.
type Progress struct {
	Bytes uint64
	// BytesAnnounced is the size of the objects whose transfer has begun
	// (sizes are learnt from each object's sender as it starts): of a
	// single object, its whole size from its first bytes on.
	BytesAnnounced uint64
	Objects        int
	ObjectsTotal   int
}

// Sync asks the server to fetch the objects of every peer request into its
// store, running the peer requests concurrently. The result holds every
// per-peer and per-object outcome; err is non-nil (an *Error) when the
// SYNC was rejected or any peer request or object failed.
func (c *Client) Sync(ctx context.Context, reqs []PeerRequest) (*SyncResult, error) {
	return c.SyncProgress(ctx, reqs, nil)
}

// SyncProgress is Sync with a callback called as the server reports
// progress (a few times a second).
func (c *Client) SyncProgress(ctx context.Context, reqs []PeerRequest, progress func(Progress)) (*SyncResult, error) {
	m := streamwire.Sync{Peers: make([]streamwire.PeerRequest, len(reqs))}
	for i, r := range reqs {
		m.Peers[i] = streamwire.PeerRequest{Kind: r.Kind, Addr: r.From, IDs: r.Objects}
	}
	// Limits are checked here too, so an invalid SYNC costs no round trip.
	if st, msg := m.Validate(); st != streamwire.StatusOK {
		return &SyncResult{Status: st, Message: msg}, &Error{Status: st, Msg: "SYNC rejected: " + msg}
	}
	res := &SyncResult{}
	err := c.do(ctx, func(tc *transfer.Conn) error {
		if err := tc.Send(streamwire.TypeSync, m.Append(nil)); err != nil {
			return err
		}
		for {
			// Progress frames come every 250 ms, so a silent server is dead.
			t, p, err := tc.ReadFrame(streamwire.MaxControlFrame)
			if err != nil {
				return err
			}
			switch t {
			case streamwire.TypeProgress:
				var pr streamwire.Progress
				if err := pr.Decode(p); err != nil {
					return &transfer.ProtocolError{Msg: err.Error()}
				}
				if progress != nil {
					wireProgress(progress)(pr)
				}
			case streamwire.TypePeerResult:
				var pr streamwire.PeerResult
				if err := pr.Decode(p); err != nil {
					return &transfer.ProtocolError{Msg: err.Error()}
				}
				res.Peers = append(res.Peers, peerFromWire(pr))
			case streamwire.TypeSyncResult:
				var d streamwire.SyncDone
				if err := d.Decode(p); err != nil {
					return &transfer.ProtocolError{Msg: err.Error()}
				}
				res.Status, res.Message, res.Bytes, res.Objects = d.Status, d.Message, d.Bytes, d.Objects
				res.Duration = time.Duration(d.DurationNs)
				return nil
			case streamwire.TypeError:
				var e streamwire.ErrorReply
				e.Decode(p)
				return &Error{Status: e.Status, Msg: fmt.Sprintf("%s: %s", c.addr, e.Message)}
			default:
				return &transfer.ProtocolError{Msg: fmt.Sprintf("got %s in a SYNC reply", t)}
			}
		}
	})
	if err != nil {
		if res.Status == streamwire.StatusOK {
			res.Status = transfer.ErrStatus(err)
			var se *Error
			if errors.As(err, &se) {
				res.Status = se.Status
			}
			res.Message = err.Error()
		}
		return res, err
	}
	return res, res.err()
}

// err is the *Error a SYNC result implies, or nil when all went well.
func (r *SyncResult) err() error {
	if r.Status == streamwire.StatusOK {
		return nil
	}
	msg := r.Message
	if failed := r.Failed(); len(failed) > 0 {
		msg += "; first: " + failed[0].Message
	}
	return &Error{Status: r.Status, Msg: msg}
}

func peerFromWire(p streamwire.PeerResult) PeerResult {
	r := PeerResult{Kind: p.Kind, From: p.Addr, Status: p.Status, Message: p.Message, Bytes: p.Bytes,
		Duration: time.Duration(p.DurationNs), Objects: make([]ObjectResult, len(p.Objects))}
	for i, o := range p.Objects {
		r.Objects[i] = ObjectResult{ID: o.ID, Status: o.Status, Bytes: o.Bytes, DeletedAtSource: o.DeletedAtSource, Message: o.Message}
	}
	return r
}

// CopyFrom fetches objects from the stream server at from straight into
// the local store dst (no local stream server involved).
func CopyFrom(ctx context.Context, from string, dst *store.Client, ids []ObjectID, opts ...Option) (*PeerResult, error) {
	return direct(ctx, streamwire.KindCopy, from, dst, ids, opts)
}

// TakeFrom is CopyFrom, after which the source deletes each object the
// local store sealed (best effort).
func TakeFrom(ctx context.Context, from string, dst *store.Client, ids []ObjectID, opts ...Option) (*PeerResult, error) {
	return direct(ctx, streamwire.KindTake, from, dst, ids, opts)
}

func direct(ctx context.Context, kind Kind, from string, dst *store.Client, ids []ObjectID, opts []Option) (*PeerResult, error) {
	if st, msg := streamwire.ValidateIDs(ids, nil); st != streamwire.StatusOK {
		return &PeerResult{Kind: kind, From: from, Status: st, Message: msg}, &Error{Status: st, Msg: fmt.Sprintf("%s %s rejected: %s", kind, from, msg)}
	}
	o := options{timeout: transfer.DefaultTimeout, name: "direct"}
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	start := time.Now()
	dial := func() (*transfer.Conn, error) {
		c, _, err := transfer.Dial(ctx, from, streamwire.RolePeer, o.name, o.timeout, o.tls)
		return c, err // a refusal keeps its status (busy, version)
	}
	objs, err := transfer.Receive(ctx, dial, dst, kind, ids, transfer.ReceiveOptions{})
	wr := transfer.Summarize(streamwire.PeerResult{Kind: kind, Addr: from, Status: streamwire.StatusOK,
		Objects: objs, DurationNs: int64(time.Since(start))}, err)
	r := peerFromWire(wr)
	if r.Status != streamwire.StatusOK {
		return &r, &Error{Status: r.Status, Msg: r.Message}
	}
	return &r, nil
}

// IsStatus reports whether err is an *Error with status st.
func IsStatus(err error, st Status) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == st
}
