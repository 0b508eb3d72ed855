package store

import (
	"context"
	"fmt"
	"time"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// EventKind says what happened to an object.
type EventKind string

const (
	EventSealed  EventKind = "sealed"
	EventDeleted EventKind = "deleted"
	EventEvicted EventKind = "evicted"
	// EventDigest: the store learned the digest of an object sealed
	// without one (or with a wrong one): Digest is set. Delivered only to
	// a subscription opened WithDigestEvents.
	EventDigest EventKind = "digest"
	// EventPresent: an object sealed before the subscription began, and
	// EventSnapshotEnd: the last of them. Delivered only to a
	// subscription opened WithSnapshot, before any other event.
	EventPresent     EventKind = "present"
	EventSnapshotEnd EventKind = "snapshot-end"
	// EventCold: the store wrote the object to its cold tier (a spill or
	// a persist); EventColdDeleted: it deleted the tier's copy (Delete).
	// Delivered only to a subscription opened WithColdEvents.
	EventCold        EventKind = "cold"
	EventColdDeleted EventKind = "cold-deleted"
)

var eventKinds = map[uint8]EventKind{
	storewire.EventSealed: EventSealed, storewire.EventDeleted: EventDeleted, storewire.EventEvicted: EventEvicted,
	storewire.EventDigest: EventDigest, storewire.EventPresent: EventPresent, storewire.EventSnapshotEnd: EventSnapshotEnd,
	storewire.EventCold: EventCold, storewire.EventColdDeleted: EventColdDeleted,
}

// SubscribeOption changes what a subscription delivers or how it
// connects.
type SubscribeOption func(*subscribeConfig)

type subscribeConfig struct {
	req  storewire.Subscribe
	conn connectConfig
}

// SubscribeConnecting connects the subscription with Connect's options
// (WithSocketOwner).
func SubscribeConnecting(opts ...ConnectOption) SubscribeOption {
	return func(c *subscribeConfig) {
		for _, o := range opts {
			o(&c.conn)
		}
	}
}

// WithDigestEvents adds EventDigest to the events delivered. A store older
// than digest events ignores it (and sends none).
func WithDigestEvents() SubscribeOption {
	return func(c *subscribeConfig) { c.req.Flags |= storewire.SubscribeDigests }
}

// WithInfo makes every event carry the object's info (Event.Info): its
// creation, construct time, creator and metadata. A store older than it
// refuses the subscription.
func WithInfo() SubscribeOption {
	return func(c *subscribeConfig) { c.req.Flags |= storewire.SubscribeInfo }
}

// WithSnapshot starts the subscription with an EventPresent for every
// object sealed in the store, then an EventSnapshotEnd: the state that
// the events after them change. A store older than it refuses the
// subscription.
func WithSnapshot() SubscribeOption {
	return func(c *subscribeConfig) { c.req.Flags |= storewire.SubscribeSnapshot }
}

// WithColdEvents adds EventCold and EventColdDeleted to the events
// delivered. A store older than it refuses the subscription (ask
// Client.ColdTier first: a store that answers it knows the flag).
func WithColdEvents() SubscribeOption {
	return func(c *subscribeConfig) { c.req.Flags |= storewire.SubscribeCold }
}

// WithoutEvents asks for no events: the subscription's Events channel
// only closes, at once, when the store goes away (or the subscription is
// closed). It is how a long-lived client watches its store without
// receiving every seal and delete. A store older than this refuses it.
func WithoutEvents() SubscribeOption {
	return func(c *subscribeConfig) { c.req.Flags |= storewire.SubscribeQuiet }
}

// Event is one notification from the store.
type Event struct {
	Kind         EventKind  `json:"event"`
	ID           ObjectID   `json:"id"`
	DataSize     uint64     `json:"data_size"`
	MetadataSize uint32     `json:"metadata_size"`
	Time         time.Time  `json:"time"`
	Digest       Digest     `json:"digest,omitzero"` // BLAKE3 (64 hex), when known
	Info         *EventInfo `json:"info,omitempty"`  // WithInfo subscriptions only
}

// EventInfo is what an event of a WithInfo subscription adds.
type EventInfo struct {
	Created    time.Time     `json:"created"`
	Construct  time.Duration `json:"construct_ns"` // create to seal
	CreatorPID uint32        `json:"creator_pid"`
	Metadata   []byte        `json:"metadata,omitempty"`
}

// Subscription delivers every seal, delete and eviction in the store (and,
// if asked, every digest learned after a seal), in order, on its own
// connection. A subscriber that falls more than the
// store's event queue behind is disconnected by the store (so that it
// cannot stall it); Events is then closed and Err says why.
type Subscription struct {
	m      *mux
	events chan Event
	err    error
}

// Subscribe opens a subscription on socket, owned by this user or root
// unless SubscribeConnecting trusts another owner (see Connect).
func Subscribe(ctx context.Context, socket string, opts ...SubscribeOption) (*Subscription, error) {
	var cfg subscribeConfig
	for _, o := range opts {
		o(&cfg)
	}
	req := cfg.req
	var payload []byte // no flags: the empty payload every store knows
	if req.Flags != 0 {
		payload = req.Append(nil)
	}
	// A subscriber parks between events rather than polling for them:
	// polling is for replies that follow a request within microseconds,
	// and would burn a core on a busy store's stream of events.
	cfg.conn.park = true
	m, f, _, err := dial(ctx, socket, cfg.conn)
	if err != nil {
		return nil, err
	}
	f.Close() // a subscriber needs no shared memory
	// Listen before subscribing: the first events may overtake the reply.
	p := m.listen()
	if _, err := m.call(ctx, storewire.TypeSubscribe, payload, nil); err != nil {
		m.close()
		return nil, err
	}
	s := &Subscription{m: m, events: make(chan Event, 1024)}
	go s.forward(p)
	return s, nil
}

// Subscribe opens a subscription to the store this client is connected
// to, trusting the socket owners the client trusts.
func (c *Client) Subscribe(ctx context.Context, opts ...SubscribeOption) (*Subscription, error) {
	trust := func(s *subscribeConfig) { s.conn.owners = append(s.conn.owners, c.dialCfg.owners...) }
	return Subscribe(ctx, c.socket, append([]SubscribeOption{trust}, opts...)...)
}

func (s *Subscription) forward(p *pend) {
	defer close(s.events)
	for {
		f, ok, _ := s.m.recv(context.Background(), p, nil)
		if !ok {
			s.m.mu.Lock()
			s.err = s.m.err
			s.m.mu.Unlock()
			return
		}
		var ev storewire.Event
		if f.t != storewire.TypeEvent || ev.Decode(f.p) != nil {
			s.err = fmt.Errorf("subscription: unexpected %s frame", f.t)
			s.m.close()
			return
		}
		select {
		case s.events <- eventFromWire(ev):
		case <-s.m.done:
		}
	}
}

// Events delivers the notifications; it is closed when the subscription
// ends.
func (s *Subscription) Events() <-chan Event { return s.events }

// Err is why the subscription ended (ErrClosed after Close); valid once
// Events is closed.
func (s *Subscription) Err() error { return s.err }

// Close ends the subscription.
func (s *Subscription) Close() error { return s.m.close() }

func eventFromWire(ev storewire.Event) Event {
	kind, ok := eventKinds[ev.Kind]
	if !ok { // a kind newer than this client: told, not mistaken for another
		kind = EventKind(fmt.Sprintf("kind%d", ev.Kind))
	}
	e := Event{Kind: kind, ID: ev.ID, DataSize: ev.DataSize,
		MetadataSize: ev.MetaSize, Time: time.Unix(0, ev.TimeNs)}
	if ev.HasDigest {
		e.Digest = ev.Digest
	}
	if in := ev.Info; in != nil {
		e.Info = &EventInfo{Created: time.Unix(0, in.CreateTimeNs), Construct: time.Duration(in.ConstructNs),
			CreatorPID: in.CreatorPID, Metadata: append([]byte(nil), in.Metadata...)}
	}
	return e
}
