package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// Defaults of Config.
const (
	DefaultPrefix   = "/plasma/"
	DefaultLeaseTTL = 10 * time.Second
)

var (
	// ErrClosed is returned by the methods of a closed Directory.
	ErrClosed = errors.New("cluster: directory closed")
	// ErrUnavailable is matched by the errors of operations etcd did not
	// answer in time (an *UnavailableError), or of changes made while the
	// registration is lost. A change that failed so is kept in memory and
	// written when the directory re-registers, without the caller doing
	// anything.
	ErrUnavailable = errors.New("cluster: directory unavailable; the change is kept and will be written when etcd is reachable")
	// ErrNameTaken: another live process registered the same node name.
	ErrNameTaken = errors.New("cluster: node name registered by another process")
)

// Node is a registered node; its JSON is the directory's node record.
type Node = streamwire.Node

// Location says that a node holds an object (a hint: see the package doc).
type Location = streamwire.Location

// Config of a Directory.
type Config struct {
	Client   *clientv3.Client // required; Close does not close it
	Prefix   string           // key prefix, default DefaultPrefix
	Self     Node             // this node; Name is required, Started defaults to now
	LeaseTTL time.Duration    // default DefaultLeaseTTL, rounded up to whole seconds
	// OpTimeout bounds each operation a caller waits for: default
	// DefaultOpTimeout.
	OpTimeout time.Duration
	Logger    *slog.Logger // nil: no logs
}

// Directory is this node's registration and view of the cluster directory.
// Its methods are safe for concurrent use.
type Directory struct {
	cli       *clientv3.Client
	prefix    string
	ttl       time.Duration
	opTimeout time.Duration
	log       *slog.Logger

	ctx    context.Context // of the background goroutine; cancelled by Close
	cancel context.CancelFunc
	wake   chan struct{} // buffered 1: something is dirty
	stop   chan struct{}
	done   chan struct{}

	mu            sync.Mutex
	self          Node
	objects       map[wire.ID]loc
	dirtyObjs     map[wire.ID]struct{}
	dirtyNode     bool                // node record and group keys to write
	removedGroups map[string]struct{} // group keys to delete
	pending       *batch              // waiters for the next flush
	degraded      bool                // registration lost or a write failed: a resync is due
	downErr       *UnavailableError   // why degraded
	overflow      bool                // more than maxDirty changes waited: a resync is due
	closed        bool
	lease         clientv3.LeaseID                        // the lease in use
	owned         map[clientv3.LeaseID]context.CancelFunc // leases granted and not yet known revoked, with their keep-alive's cancel

	cold *coldWriter // cold records waiting for etcd (cold.go)
}

type loc struct {
	size   uint64
	digest wire.Digest // zero when unknown
}

// Open registers cfg.Self under a new lease (taking the name over from a
// previous incarnation whose lease has not expired yet) and keeps the lease
// alive until Close.
func Open(ctx context.Context, cfg Config) (*Directory, error) {
	if cfg.Client == nil {
		return nil, errors.New("cluster: Config.Client is required")
	}
	if err := validName("node", cfg.Self.Name); err != nil {
		return nil, err
	}
	self := cfg.Self
	self.Groups = normGroups(self.Groups)
	for _, g := range self.Groups {
		if err := validName("group", g); err != nil {
			return nil, err
		}
	}
	if self.Started.IsZero() {
		self.Started = time.Now()
	}
	self.Started = self.Started.UTC().Round(0)
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	ttl := cfg.LeaseTTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	ttl = ttl.Round(time.Second)
	if ttl < time.Second {
		ttl = time.Second
	}
	opTimeout := cfg.OpTimeout
	if opTimeout <= 0 {
		opTimeout = DefaultOpTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Directory{
		cli:           cfg.Client,
		prefix:        prefix,
		ttl:           ttl,
		opTimeout:     opTimeout,
		log:           log.With("node", self.Name),
		wake:          make(chan struct{}, 1),
		stop:          make(chan struct{}),
		done:          make(chan struct{}),
		self:          self,
		objects:       map[wire.ID]loc{},
		dirtyObjs:     map[wire.ID]struct{}{},
		removedGroups: map[string]struct{}{},
		owned:         map[clientv3.LeaseID]context.CancelFunc{},
		cold:          newColdWriter(),
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	ka, err := d.resync(ctx, true)
	if err != nil {
		d.cancel()
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		d.revokeOwned(rctx)
		rcancel()
		return nil, fmt.Errorf("cluster: register node %q: %w", self.Name, err)
	}
	d.log.Info("registered in the cluster directory", "address", self.Address, "groups", self.Groups, "lease", fmt.Sprintf("%x", int64(d.lease)), "ttl", ttl)
	go d.run(ka)
	go d.runCold()
	return d, nil
}

// Self is this node as registered.
func (d *Directory) Self() Node {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.self
	n.Groups = slices.Clone(n.Groups)
	return n
}

func (d *Directory) usable() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return nil
}

// Close revokes the lease: the node's registration, groups and locations
// disappear from the directory at once. The etcd client stays open.
func (d *Directory) Close() error {
	if !d.halt() {
		return nil
	}
	if err := d.cli.Ctx().Err(); err != nil {
		return fmt.Errorf("cluster: etcd client of node %q closed before the directory; its keys expire within %v", d.self.Name, d.ttl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.revokeOwned(ctx); err != nil {
		return fmt.Errorf("cluster: revoke the lease of node %q (its keys expire within %v): %w", d.self.Name, d.ttl, err)
	}
	d.log.Info("left the cluster directory")
	return nil
}

// abandon stops the directory as a process death would: the keep-alive
// stops and nothing is revoked. For tests.
func (d *Directory) abandon() { d.halt() }

// halt stops the directory's goroutine and fails pending writes; it
// reports false if the directory was already stopped.
func (d *Directory) halt() bool {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return false
	}
	d.closed = true
	d.failPending(ErrClosed)
	d.mu.Unlock()
	close(d.stop)
	<-d.cold.done // its last flush needs no lease
	d.cancel()
	<-d.done
	return true
}

// Health is nil while this node is registered and its changes are being
// written; otherwise why not (etcd unreachable, the registration lost and
// being renewed).
func (d *Directory) Health() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return ErrClosed
	case d.degraded && d.downErr != nil:
		return d.downErr
	case d.degraded:
		return ErrUnavailable
	}
	return nil
}
