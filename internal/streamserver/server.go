package streamserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plasmastream/plasmastream/internal/activity"
	"github.com/plasmastream/plasmastream/internal/bridge"
	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/natsconn"
	"github.com/plasmastream/plasmastream/internal/netutil"
	"github.com/plasmastream/plasmastream/internal/node"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/tracing"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/store"
)

// Server is a running stream server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	ln      net.Listener
	metrics *metrics
	stats   transfer.Stats
	start   time.Time
	active  atomic.Int64
	httpSrv *http.Server
	node    *node.Node                // PULL, DELETE and the cluster requests
	joined  atomic.Pointer[node.Node] // node, once made: for /readyz, served before
	budget  memBudget                 // request memory (--request-memory)
	// activity holds the transfers under way, the last finished ones and
	// the last errors, for the dashboard.
	activity *activity.Registry
	history  *history // throughput and store usage of the last minutes
	seen     seenNodes
	histStop context.CancelFunc
	histDone chan struct{} // closed when recordHistory has returned

	stopTracing func(context.Context) error   // flushes and stops the OTLP exporter
	state       *stateStream                  // state streaming; nil: off
	nats        *natsconn.Conn                // --nats: state streaming and the bridge; nil: none
	bridge      *bridge.Bridge                // the NATS bridge; nil without NATS
	bridgeView  atomic.Pointer[bridge.Bridge] // bridge, once made: for the dashboard, served before

	failMu  sync.Mutex
	failErr error // why the node stops itself (state streaming's stop-node-on-error)

	storeMu    sync.Mutex
	store      *storeConn // nil while the store is down
	storeSince time.Time  // when store last changed
	storeStop  context.CancelFunc
	storeDone  chan struct{} // closed when keepStore has returned

	// trust and peerTLS are the trust file and the TLS configuration of
	// both ends of every connection; nil without -k/--private-key.
	trust   *trust.Store
	peerTLS *tls.Config
	key     trust.PublicKey // this node's, published with its registration
	// memberRole is the role of a key registered in the cluster
	// directory (--cluster-role); members follows the registrations.
	memberRole trust.Role
	members    atomic.Pointer[cluster.Members]
	ca         *caMode       // CA mode (--tls-cert...): nil otherwise
	refusing   chan struct{} // busy refusals under TLS being handled (at most its capacity)

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	keyed map[net.Conn]trust.PublicKey // the peer keys of TLS connections, by raw socket
	wg    sync.WaitGroup
}

// ErrNoStore is returned by New when the local store cannot be reached.
var ErrNoStore = errors.New("no Plasma store")

// New connects to the local store and binds the port; nothing is served
// until Serve.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, start: time.Now(), conns: map[net.Conn]struct{}{}, keyed: map[net.Conn]trust.PublicKey{},
		budget: memBudget{limit: cfg.RequestMemory}, activity: activity.New(cfg.Logger.With(cliutil.LogComponent, "transfer")), storeDone: make(chan struct{}), refusing: make(chan struct{}, maxTLSRefusals)}
	if err := s.loadTrust(); err != nil {
		if cfg.Listener != nil {
			cfg.Listener.Close()
		}
		return nil, err
	}
	s.metrics = newMetrics(s)
	var err error
	if s.nats, err = s.connectNATS(ctx); err == nil {
		if s.state, err = s.startStreaming(ctx); err != nil {
			s.closeNATS()
		}
	}
	if err != nil {
		if cfg.Listener != nil {
			cfg.Listener.Close()
		}
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sc, err := connectStore(cctx, cfg, s.state != nil)
	if err != nil {
		s.state.close()
		s.closeNATS()
		if errors.Is(err, store.ErrSocketOwner) {
			return nil, err
		}
		return nil, fmt.Errorf("%w at %s: start plasma-store-server first (plasma-store-server -m SIZE -s %s): %v",
			ErrNoStore, cfg.PlasmaSocket, cfg.PlasmaSocket, err)
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.Port))); err != nil {
			sc.retire()
			s.state.close()
			s.closeNATS()
			return nil, fmt.Errorf("listen on port %d: %w", cfg.Port, err)
		}
	}
	s.failMu.Lock()
	s.ln = ln
	s.failMu.Unlock()
	s.setStore(sc)
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			sc.retire()
			s.state.close()
			s.closeNATS()
			return nil, fmt.Errorf("metrics listener on %s: %w", cfg.MetricsAddr, err)
		}
		s.serveHTTP(mln)
	}
	if cfg.NodeName == "" {
		s.cfg.NodeName = ln.Addr().String()
	}
	if s.stopTracing, err = tracing.Setup(ctx, cfg.OTLPEndpoint, "plasma-stream-server", s.cfg.NodeName, s.log); err != nil {
		close(s.storeDone)
		s.shutdown()
		sc.retire()
		return nil, err
	}
	if s.node, err = s.newNode(ctx, sc.st); err != nil {
		close(s.storeDone)
		s.shutdown()
		sc.retire()
		return nil, err
	}
	s.followMembers()
	s.joined.Store(s.node)
	s.state.watch(s.node)
	if s.bridge, err = s.startBridge(); err != nil {
		close(s.storeDone)
		s.shutdown()
		sc.retire()
		return nil, err
	}
	s.bridgeView.Store(s.bridge)
	// The store is watched from here on (the cluster, if any, has listed
	// it: the subscription's events since are mirrored in order).
	var sctx context.Context
	sctx, s.storeStop = context.WithCancel(context.Background())
	go s.keepStore(sctx, sc)
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Node is the server's node name.
func (s *Server) Node() string { return s.cfg.NodeName }

// Stats are the server's transfer counters.
func (s *Server) Stats() *transfer.Stats { return &s.stats }

// Serve accepts connections until ctx ends, then closes them all, waits
// for their goroutines and disconnects from the store.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	s.log.Info("stream server serving", "addr", s.ln.Addr().String(), "node", s.cfg.NodeName, "store", s.cfg.PlasmaSocket)
	s.warnUnauthenticated()
	var err error
	var backoff netutil.AcceptBackoff
	for {
		var nc net.Conn
		nc, err = s.ln.Accept()
		if err != nil {
			// Transient failures (out of file descriptors) must not end
			// the server: wait and accept again.
			if backoff.Retry(ctx, err, s.log) {
				continue
			}
			break
		}
		backoff.Reset()
		if s.protected() && !isLoopback(nc.RemoteAddr()) {
			s.metrics.notPermitted.Inc()
			s.log.Info("refusing a peer: protected mode serves loopback peers only", "peer", nc.RemoteAddr().String())
			go s.refuse(nc, streamwire.StatusNotPermitted, fmt.Sprintf(
				"not permitted: %s started without keys serves only loopback; start it with --allow-unauthenticated or --bind ADDR", s.cfg.NodeName))
			continue
		}
		if s.active.Load() >= int64(s.cfg.MaxConnections) {
			s.metrics.busy.Inc()
			go s.refuse(nc, streamwire.StatusServerBusy, fmt.Sprintf(
				"server busy: %s already serves its maximum of %d connections; try again later", s.cfg.NodeName, s.cfg.MaxConnections))
			continue
		}
		s.active.Add(1)
		s.track(nc, true)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.active.Add(-1)
			defer s.track(nc, false)
			s.serveConn(ctx, nc)
		}()
	}
	s.mu.Lock()
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.shutdown()
	if err := s.failure(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("accept: %w", err)
}

// shutdown releases what New acquired: the cluster registration (revoked:
// this node's locations vanish at once), the metrics listener, the store.
func (s *Server) shutdown() {
	if s.storeStop != nil {
		s.storeStop()
	}
	if s.bridge != nil {
		s.bridge.Close() // its fetches use the node and the store
	}
	<-s.storeDone   // keepStore has released the store
	s.state.close() // after the last store event
	s.closeNATS()
	if s.node != nil {
		s.node.Close()
	}
	if s.httpSrv != nil {
		s.httpSrv.Close()
		s.histStop()
		<-s.histDone
	}
	s.ln.Close()
	if s.stopTracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.stopTracing(ctx) // flushes the last spans
	}
}

func (s *Server) track(nc net.Conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		s.conns[nc] = struct{}{}
	} else {
		delete(s.conns, nc)
		delete(s.keyed, nc)
		if s.ca != nil {
			s.ca.forget(nc)
		}
		nc.Close()
	}
}

// refuse tells a connection the server will not serve (beyond
// MaxConnections, or a non-loopback peer in protected mode) why, before
// its HELLO is read. It then half-closes and drains what the client sent
// (its HELLO) before closing, so that the kernel does not reset the
// connection and lose the message.
func (s *Server) refuse(nc net.Conn, status streamwire.Status, msg string) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(refuseTimeout))
	if s.peerTLS != nil {
		tc, ok := s.refuseHandshake(nc)
		if !ok {
			return
		}
		defer func() { <-s.refusing }()
		nc = tc
	}
	nc.Write(streamwire.AppendFrame(nil, streamwire.TypeError, streamwire.ErrorReply{Status: status, Message: msg}.Append(nil)))
	switch c := nc.(type) {
	case *net.TCPConn:
		c.CloseWrite()
	case *tls.Conn:
		c.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(nc, 1<<16))
}
