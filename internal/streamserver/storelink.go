package streamserver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/store"
)

// storeConn is one connection to the store, with everything whose life is
// tied to it: the subscription that tells at once when the store goes
// away (its reader is always waiting, unlike the client's, which notices
// only when a request fails), the objects arriving into this store's
// memory (partials).
//
// A storeConn is used under a reference (useStore ... release): when the
// store goes away, the server retires it, and it is closed (its arena
// unmapped) only once the last user has let go, so that no transfer ever
// touches unmapped memory.
type storeConn struct {
	st       *store.Client
	sub      *store.Subscription
	partials *transfer.Partials

	mu      sync.Mutex
	refs    int
	retired bool
}

// connectStore opens a storeConn: subscribe first, so that the
// subscription is in place before anyone lists the store.
// A server in a cluster mirrors the store's events into the directory
// (digest events too: they complete the locations of objects sealed
// without a digest once the store has hashed them); a standalone one only
// needs to know at once when the store goes away, and asks for no events.
//
// With state streaming (stream) it asks for every event with the
// object's info, starting with a snapshot of the store. In a cluster it
// also asks for the events of the store's cold tier, if it has one.
func connectStore(ctx context.Context, cfg Config, stream bool) (*storeConn, error) {
	// The stream server writes every object it receives: mapping the
	// whole arena up front spares each its page faults.
	opts := []store.ConnectOption{store.WithPrefault()}
	if cfg.SocketOwner != "" {
		uid, err := store.LookupUser(cfg.SocketOwner)
		if err != nil {
			return nil, err
		}
		opts = append(opts, store.WithSocketOwner(uid))
	}
	st, err := store.Connect(ctx, cfg.PlasmaSocket, opts...)
	if err != nil {
		return nil, err
	}
	what := []store.SubscribeOption{store.WithoutEvents()}
	if cfg.Cluster.Etcd != "" {
		what = []store.SubscribeOption{store.WithDigestEvents()}
	}
	if stream {
		what = []store.SubscribeOption{store.WithDigestEvents(), store.WithInfo(), store.WithSnapshot()}
	}
	if cfg.Cluster.Etcd != "" {
		// A store with a cold tier tells when it writes or deletes a cold
		// copy: the node records it in the directory. (A store that does
		// not know the ColdTier request would refuse the flag.)
		if url, err := st.ColdTier(ctx); err != nil {
			st.Close()
			return nil, fmt.Errorf("ask the store for its cold tier: %w", err)
		} else if url != "" {
			what = append(what, store.WithColdEvents())
		}
	}
	sub, err := st.Subscribe(ctx, what...)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("subscribe to the store: %w", err)
	}
	return &storeConn{st: st, sub: sub,
		partials: transfer.NewPartials(cfg.ResumeKeep, st.Capacity()/2)}, nil
}

func (sc *storeConn) release() {
	sc.mu.Lock()
	sc.refs--
	last := sc.retired && sc.refs == 0
	sc.mu.Unlock()
	if last {
		sc.close()
	}
}

// retire closes the connection once its users are done.
func (sc *storeConn) retire() {
	sc.sub.Close()
	sc.mu.Lock()
	sc.retired = true
	idle := sc.refs == 0
	sc.mu.Unlock()
	if idle {
		sc.close()
	}
}

func (sc *storeConn) close() {
	sc.partials.Shutdown()
	sc.st.Close()
}

// ErrStoreUnavailable is the error of a request that needs the store while
// it is down (the server is reconnecting).
var ErrStoreUnavailable = errors.New("store unavailable")

// useStore returns the store connection under a reference (release it when
// done), or an *streamwire.ErrorReply of status StoreUnavailable that says
// since when the store has been unreachable.
func (s *Server) useStore() (*storeConn, error) {
	s.storeMu.Lock()
	defer s.storeMu.Unlock()
	if s.store == nil {
		return nil, &streamwire.ErrorReply{Status: streamwire.StatusStoreUnavailable, Message: fmt.Sprintf(
			"%v: the store of %s at %s went away %s ago (since %s); the server is reconnecting: retry later or restart plasma-store-server -s %s",
			ErrStoreUnavailable, s.cfg.NodeName, s.cfg.PlasmaSocket, time.Since(s.storeSince).Round(time.Millisecond),
			s.storeSince.Format(time.RFC3339), s.cfg.PlasmaSocket)}
	}
	s.store.mu.Lock()
	s.store.refs++
	s.store.mu.Unlock()
	return s.store, nil
}

// storeState is what PING and STAT report.
func (s *Server) storeState() streamwire.StoreState {
	s.storeMu.Lock()
	defer s.storeMu.Unlock()
	return streamwire.StoreState{Up: s.store != nil, SinceNs: s.storeSince.UnixNano()}
}

func (s *Server) setStore(sc *storeConn) {
	s.storeMu.Lock()
	s.store, s.storeSince = sc, time.Now()
	s.storeMu.Unlock()
	s.metrics.storeUp.Set(b2f(sc != nil))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Reconnection backoff: first retry after storeRetryMin, doubling to
// storeRetryMax.
const (
	storeRetryMin = 50 * time.Millisecond
	storeRetryMax = 2 * time.Second
)

// keepStore follows the store's notifications (mirroring them into the
// cluster directory) and, when the subscription ends because the store
// went away, retires the connection, answers requests with "store
// unavailable" and reconnects with backoff. On reconnection the cluster
// directory is resynchronised with the new store, which may have lost
// objects. It returns when ctx ends.
func (s *Server) keepStore(ctx context.Context, sc *storeConn) {
	defer close(s.storeDone)
	for sc != nil {
		stop := context.AfterFunc(ctx, func() { sc.sub.Close() })
		for ev := range sc.sub.Events() {
			if s.state != nil {
				s.state.event(ev)
			}
			s.node.Event(ev)
		}
		stop()
		s.setStore(nil)
		sc.retire()
		if ctx.Err() != nil {
			return
		}
		s.log.With("component", "store").Warn(fmt.Sprintf("store at %s went away; reconnecting", s.cfg.PlasmaSocket), "err", sc.sub.Err())
		if sc = s.reconnectStore(ctx); sc == nil {
			return
		}
		s.setStore(sc)
		s.log.With("component", "store").Info("store reconnected", "store", s.cfg.PlasmaSocket)
		if err := s.node.Resync(ctx, sc.st); err != nil {
			s.log.With("component", "store").Warn("cluster directory: resync with the reconnected store failed", "err", err)
		}
	}
}

// reconnectStore dials the store until it answers, or returns nil when
// ctx ends.
func (s *Server) reconnectStore(ctx context.Context) *storeConn {
	wait := storeRetryMin
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		sc, err := connectStore(cctx, s.cfg, s.state != nil)
		cancel()
		if err == nil {
			return sc
		}
		s.log.With("component", "store").Debug("store still unreachable", "store", s.cfg.PlasmaSocket, "err", err)
		wait = min(2*wait, storeRetryMax)
	}
}
