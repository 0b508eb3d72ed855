package storeserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/plasmastream/plasmastream/internal/arena"
)

// Config is everything plasma-store-server needs to run.
type Config struct {
	Socket    string // unix socket path
	Capacity  uint64 // bytes of shared memory for objects
	Dir       string // directory of the arena file; "" for a memfd
	HugePages bool
	Logger    *slog.Logger
	// EventQueue is the number of events buffered per subscriber before a
	// subscriber that does not keep up is disconnected.
	EventQueue int
}

// Server is a running store: its arena, its socket and its clients.
type Server struct {
	cfg   Config
	log   *slog.Logger
	arena *arena.Arena
	st    *state
	ln    *net.UnixListener

	mu    sync.Mutex
	conns map[*conn]struct{}
	wg    sync.WaitGroup
}

// ErrStoreRunning is returned by New when a live store already serves on
// the socket.
var ErrStoreRunning = errors.New("a store is already serving on this socket")

// New reserves the arena and binds the socket. The store serves nothing
// until Serve is called.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.EventQueue <= 0 {
		cfg.EventQueue = 1 << 16
	}
	ln, err := listen(cfg.Socket)
	if err != nil {
		return nil, err
	}
	a, err := arena.Create(cfg.Capacity, arena.Options{Dir: cfg.Dir, HugePages: cfg.HugePages})
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Server{
		cfg: cfg, log: cfg.Logger, arena: a, ln: ln,
		st:    newState(a.Mem, cfg.Capacity),
		conns: map[*conn]struct{}{},
	}, nil
}

// listen binds path, replacing a stale socket file left by a dead store
// and refusing when a live one answers.
func listen(path string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket; refusing to replace it", path)
		}
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: %s (stop it first or choose another socket with -s)", ErrStoreRunning, path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("probe existing socket %s: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}

// Addr is the socket path.
func (s *Server) Addr() string { return s.cfg.Socket }

// Capacity is the number of bytes available for objects.
func (s *Server) Capacity() uint64 { return s.cfg.Capacity }

// Serve accepts clients until ctx is done, then closes every connection,
// removes the socket and releases the arena.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	dctx, stopDigests := context.WithCancel(ctx)
	digesting := make(chan struct{})
	go func() { s.st.digestLoop(dctx); close(digesting) }()
	s.log.Info("store serving", "socket", s.cfg.Socket, "capacity", s.cfg.Capacity, "arena_bytes", s.arena.Size)
	var err error
	for {
		var uc *net.UnixConn
		uc, err = s.ln.AcceptUnix()
		if err != nil {
			break
		}
		c := newConn(s, uc)
		s.mu.Lock()
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
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	stopDigests()
	<-digesting // it reads the arena
	s.arena.Close()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("accept on %s: %w", s.cfg.Socket, err)
}
