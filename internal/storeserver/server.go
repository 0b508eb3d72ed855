package storeserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plasmastream/plasmastream/internal/arena"
	"github.com/plasmastream/plasmastream/internal/coldtier"
	"github.com/plasmastream/plasmastream/internal/netutil"
)

// Config is everything plasma-store-server needs to run. A zero field
// means its default (SetDefaults fills it) unless its comment says
// otherwise; DefaultConfig is what the binary starts from.
type Config struct {
	Socket    string // unix socket path; "": store.DefaultSocket
	Capacity  uint64 // bytes of shared memory for objects (required)
	Dir       string // directory of the arena file; "" for a memfd
	HugePages bool
	// SocketMode is the socket's permission bits (--socket-mode). 0:
	// DefaultSocketMode, the owner only.
	SocketMode fs.FileMode
	// SocketGroup, a group name or gid, is given the socket
	// (--socket-group) so that its members can connect when SocketMode
	// allows the group; "": the process's group.
	SocketGroup string
	Logger      *slog.Logger
	// EventQueue is the number of events buffered per subscriber before a
	// subscriber that does not keep up is disconnected.
	EventQueue int
	// MaxClients bounds the connected clients; one more is answered
	// "store busy" and closed. 0: DefaultMaxClients().
	MaxClients int
	// HandshakeTimeout is how long a new connection has to complete the
	// Hello exchange before it is dropped. 0: DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// WaitMemory bounds the memory that blocked Gets hold, store-wide; a
	// Get that would exceed it fails with CodeBusy. 0: DefaultWaitMemory.
	WaitMemory uint64
	// MetricsAddr is where Prometheus /metrics and /healthz are served
	// (--metrics-addr, host:port); "": nowhere, and requests are not
	// timed.
	MetricsAddr string
	// Cold is the cold tier (-e/--external-store): objects evicted from
	// memory are written there first, persisted ones at once, and a Get
	// restores them (docs/cold-tier.md). Its zero URL: no cold tier.
	Cold coldtier.Config
	// ColdTimeout bounds every write to, read from or delete in the cold
	// tier, so that a tier that hangs never holds the store. 0:
	// DefaultColdTimeout.
	ColdTimeout time.Duration
	// RestoreOnStart restores, in the background, the objects the cold
	// tier holds while they fit in free memory.
	RestoreOnStart bool
	// ColdShared says other stores write to the same cold tier: a Get of
	// an id this store does not know asks the tier for it.
	ColdShared bool
	// NoPrefault leaves the arena's pages to be faulted in by the first
	// write (--no-prefault). By default the store, once serving, maps its
	// whole arena in the background (arena.Populated), so that the kernel
	// zeroes the reserved pages there rather than in a client's first put.
	NoPrefault bool
}

// DefaultMaxClients is the client limit derived from this process's limit
// of open files (RLIMIT_NOFILE, soft; the Go runtime raises it to the hard
// limit at start): 32 plus a sixteenth of the limit are left for the
// arena, the listener, logs and the runtime, and each client costs the
// store up to two descriptors (its socket, and while it is idle the
// duplicate parked in the poller; see package spinconn).
func DefaultMaxClients() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > math.MaxInt32 {
		return 1 << 20
	}
	return max(1, (int(rl.Cur)-32-int(rl.Cur/16))/2)
}

// Server is a running store: its arena, its socket and its clients.
type Server struct {
	cfg   Config
	log   *slog.Logger
	arena *arena.Arena
	st    *state
	ln    *net.UnixListener
	sock  *socketFile // ln's socket file

	mu    sync.Mutex
	conns map[*conn]struct{}
	wg    sync.WaitGroup

	refusing   chan struct{} // bounds the goroutines answering "store busy"
	refusalLog netutil.Sometimes

	metrics   *metrics     // nil without MetricsAddr
	metricsLn net.Listener // nil without MetricsAddr
}

// createArena is arena.Create; a test replaces it to look at the socket
// while the memory is being reserved.
var createArena = arena.Create

// ErrStoreRunning is returned by New when a live store already serves on
// the socket.
var ErrStoreRunning = errors.New("a store is already serving on this socket")

// New binds the socket, reserves the arena, and only then makes the
// socket appear at its path. The store serves nothing until Serve is
// called.
func New(cfg Config) (*Server, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	gid := -1
	if cfg.SocketGroup != "" {
		g, err := LookupGroup(cfg.SocketGroup)
		if err != nil {
			return nil, err
		}
		gid = g
	}
	sock, err := listen(cfg.Socket, cfg.SocketMode, gid)
	if err != nil {
		return nil, err
	}
	var cold *coldState
	if cfg.Cold.URL != "" {
		if cold, err = openCold(&cfg); err != nil {
			sock.close()
			return nil, err
		}
	}
	a, err := createArena(cfg.Capacity, arena.Options{Dir: cfg.Dir, HugePages: cfg.HugePages})
	if err != nil {
		sock.close()
		return nil, err
	}
	st := newState(a.Mem, cfg.Capacity, cfg.WaitMemory)
	st.cold = cold
	s := &Server{
		cfg: cfg, log: cfg.Logger, arena: a, ln: sock.ln, sock: sock,
		st:       st,
		conns:    map[*conn]struct{}{},
		refusing: make(chan struct{}, 8),
	}
	if s.metricsLn, err = s.listenMetrics(); err != nil {
		a.Close()
		sock.close()
		return nil, err
	}
	if s.metricsLn != nil {
		s.metrics = newMetrics(s)
	}
	// Only now, with the memory reserved, does the socket appear: a
	// client that finds it finds a store that will answer.
	if err := sock.publish(); err != nil {
		if s.metricsLn != nil {
			s.metricsLn.Close()
		}
		a.Close()
		sock.close()
		return nil, err
	}
	return s, nil
}

// prefault populates the arena in the background until it is done or ctx
// is; the returned channel is closed when it stops. Serving does not wait
// for it: a client writing before it gets there only faults as it would
// have anyway.
func (s *Server) prefault(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	if s.cfg.NoPrefault {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		start := time.Now()
		p := arena.NewPopulated(s.arena.Mem)
		p.Run(ctx.Done())
		s.log.Debug("arena prefaulted", "complete", p.Complete(), "bytes", len(s.arena.Mem), "took", time.Since(start))
	}()
	return done
}

// Addr is the socket path.
func (s *Server) Addr() string { return s.cfg.Socket }

// Capacity is the number of bytes available for objects: the configured
// capacity (-m). Objects are placed in 64-byte blocks, of which the store
// has enough for an object of that many bytes.
func (s *Server) Capacity() uint64 { return s.st.capacity }

// Serve accepts clients until ctx is done, then closes every connection,
// removes the socket and releases the arena. A failing accept (out of
// file descriptors, say) never stops it: it backs off and tries again.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	dctx, stopDigests := context.WithCancel(ctx)
	digesting := make(chan struct{})
	go func() { s.st.digestLoop(dctx); close(digesting) }()
	if s.metricsLn != nil {
		hs := &http.Server{Handler: s.metricsHandler(), ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(s.metricsLn)
		defer hs.Close()
	}
	s.log.Info("store serving", "socket", s.cfg.Socket, "capacity", s.Capacity(), "arena_bytes", s.arena.Size,
		"max_clients", s.cfg.MaxClients, "socket_mode", fmt.Sprintf("%#o", s.cfg.SocketMode), "socket_group", s.cfg.SocketGroup)
	if s.cfg.RestoreOnStart {
		s.st.restoreAll()
	}
	populating := s.prefault(ctx)
	var backoff netutil.AcceptBackoff
	for {
		uc, err := s.ln.AcceptUnix()
		if err != nil {
			if !backoff.Retry(ctx, err, s.log) {
				break
			}
			continue
		}
		backoff.Reset()
		s.mu.Lock()
		if n := len(s.conns); n >= s.cfg.MaxClients {
			s.mu.Unlock()
			s.refuse(uc, n)
			continue
		}
		c := newConn(s, uc)
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
	s.sock.close()
	s.mu.Lock()
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.st.cold.cancelIO() // a connection may be waiting for a spill or a persist
	s.wg.Wait()
	s.st.cold.stop() // its spills and restores use the arena
	stopDigests()
	<-digesting  // it reads the arena
	<-populating // it maps the arena
	s.arena.Close()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("socket %s closed while serving", s.cfg.Socket)
}
