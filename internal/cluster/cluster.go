// Package cluster is the cluster directory of Plasma Stream, kept in etcd:
// which nodes are alive (with the address their peers dial and the groups
// they belong to) and which nodes hold which objects.
//
// Every key a node writes is attached to one etcd lease that the node keeps
// alive, so a node that dies disappears from the directory, with all its
// object locations, within the lease TTL, and Close makes it disappear at
// once. The key layout and the consistency model are in docs/cluster.md.
//
// A location is a hint, never the truth: the holder may have evicted or
// deleted the object a moment ago, or be dying with its lease not yet
// expired. Callers must tolerate stale locations (a failed fetch is followed
// by the next holder) and must verify the bytes they receive (the digest).
//
// The Directory keeps its own registration and locations in memory, and
// that set is authoritative: when etcd is unreachable, writes return an
// error but are kept, and a background goroutine writes everything again
// under a new lease when etcd is back (after an etcd restart that lost the
// lease, a long partition, or any failed write).
//
// Nothing a caller waits for waits on etcd longer than Config.OpTimeout
// (default 3 s): reads and the writes of changes that fail so return an
// UnavailableError. The store mirror uses QueueLocation and QueueRemoval,
// which never wait on etcd at all.
package cluster

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Defaults of Config.
const (
	DefaultPrefix   = "/plasma/"
	DefaultLeaseTTL = 10 * time.Second
)

// maxTxnOps is etcd's default --max-txn-ops; batches stay within it.
const maxTxnOps = 128

// maxDirty bounds the location changes waiting for a flush. Beyond it they
// are dropped and the directory rewrites its whole state under a new lease
// instead (a resync writes every location; revoking the old lease deletes
// the rest), so the memory they take does not grow with an etcd outage.
const maxDirty = 1 << 16

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

// Node is a registered node. JSON names are those of the directory record.
type Node struct {
	Name    string    `json:"name"`
	Address string    `json:"address"` // host:port its peers dial
	Groups  []string  `json:"groups"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
}

// Location says that a node holds an object (a hint: see the package doc).
type Location struct {
	Node    string `json:"node"`
	Address string `json:"address"`
	Size    uint64 `json:"size"`
	Digest  string `json:"digest"` // hex BLAKE3-256 root, or "" when unknown
}

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
	objects       map[[20]byte]loc
	dirtyObjs     map[[20]byte]struct{}
	dirtyNode     bool                // node record and group keys to write
	removedGroups map[string]struct{} // group keys to delete
	pending       *batch              // waiters for the next flush
	degraded      bool                // registration lost or a write failed: a resync is due
	downErr       *UnavailableError   // why degraded
	overflow      bool                // more than maxDirty changes waited: a resync is due
	closed        bool
	lease         clientv3.LeaseID                        // the lease in use
	owned         map[clientv3.LeaseID]context.CancelFunc // leases granted and not yet known revoked, with their keep-alive's cancel
}

type loc struct {
	size      uint64
	digest    [32]byte
	hasDigest bool
}

// batch is a set of changes written by one flush; its waiters learn the
// outcome when done is closed.
type batch struct {
	done chan struct{}
	err  error
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
		objects:       map[[20]byte]loc{},
		dirtyObjs:     map[[20]byte]struct{}{},
		removedGroups: map[string]struct{}{},
		owned:         map[clientv3.LeaseID]context.CancelFunc{},
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

// AddLocation records that this node holds object id (size bytes, BLAKE3
// root digest when known). It returns once etcd has it, or an error: an
// *UnavailableError (matching ErrUnavailable) when etcd has not answered
// within the operation timeout or the registration is lost, and the
// location is kept and written on recovery; ctx's error when ctx ends
// first, and the write still happens.
func (d *Directory) AddLocation(ctx context.Context, id [20]byte, size uint64, digest *[32]byte) error {
	l := loc{size: size}
	if digest != nil {
		l.digest, l.hasDigest = *digest, true
	}
	return d.mutate(ctx, func() {
		d.objects[id] = l
		d.markDirty(id)
	})
}

// RemoveLocation records that this node no longer holds object id. Errors as
// for AddLocation.
func (d *Directory) RemoveLocation(ctx context.Context, id [20]byte) error {
	return d.mutate(ctx, func() {
		delete(d.objects, id)
		d.markDirty(id)
	})
}

// RetainLocations withdraws every location of this node whose object keep
// rejects (the store restarted and lost them). Errors as for AddLocation.
func (d *Directory) RetainLocations(ctx context.Context, keep func(id [20]byte) bool) error {
	return d.mutate(ctx, func() {
		for id := range d.objects {
			if !keep(id) {
				delete(d.objects, id)
				d.dirtyObjs[id] = struct{}{}
			}
		}
	})
}

// JoinGroup adds this node to group (no-op if a member already). Errors as
// for AddLocation.
func (d *Directory) JoinGroup(ctx context.Context, group string) error {
	if err := validName("group", group); err != nil {
		return err
	}
	return d.mutate(ctx, func() {
		if !slices.Contains(d.self.Groups, group) {
			d.self.Groups = normGroups(append(d.self.Groups, group))
		}
		delete(d.removedGroups, group)
		d.dirtyNode = true
	})
}

// LeaveGroup removes this node from group. Errors as for AddLocation.
func (d *Directory) LeaveGroup(ctx context.Context, group string) error {
	if err := validName("group", group); err != nil {
		return err
	}
	return d.mutate(ctx, func() {
		if i := slices.Index(d.self.Groups, group); i >= 0 {
			d.self.Groups = slices.Delete(d.self.Groups, i, i+1)
			d.removedGroups[group] = struct{}{}
		}
		d.dirtyNode = true
	})
}

// LocalLocations is the number of locations this node has recorded (the
// in-memory set, whether or not etcd has them yet).
func (d *Directory) LocalLocations() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.objects)
}

// QueueLocation records, as AddLocation, that this node holds object id,
// without waiting for etcd: the background goroutine writes it (at once,
// or when etcd answers again). It fails only when the directory is closed.
func (d *Directory) QueueLocation(id [20]byte, size uint64, digest *[32]byte) error {
	l := loc{size: size}
	if digest != nil {
		l.digest, l.hasDigest = *digest, true
	}
	_, err := d.apply(func() {
		d.objects[id] = l
		d.markDirty(id)
	}, false)
	return err
}

// QueueRemoval records, as RemoveLocation, that this node no longer holds
// object id, without waiting for etcd.
func (d *Directory) QueueRemoval(id [20]byte) error {
	_, err := d.apply(func() {
		delete(d.objects, id)
		d.markDirty(id)
	}, false)
	return err
}

// markDirty queues the write of id's location, within maxDirty. d.mu held.
func (d *Directory) markDirty(id [20]byte) {
	if d.overflow {
		return // the resync due writes it
	}
	if len(d.dirtyObjs) >= maxDirty {
		clear(d.dirtyObjs)
		d.overflow = true
		return
	}
	d.dirtyObjs[id] = struct{}{}
}

// mutate applies change to the in-memory state and waits for the flush that
// writes it, at most the operation timeout.
func (d *Directory) mutate(ctx context.Context, change func()) error {
	b, err := d.apply(change, true)
	if b == nil {
		return err
	}
	octx, cancel := d.opCtx(ctx)
	defer cancel()
	select {
	case <-b.done:
		return b.err // nil, ErrClosed or an *UnavailableError
	case <-octx.Done():
		return d.failed(ctx, "write", octx.Err())
	}
}

// apply applies change to the in-memory state and has it flushed; with
// wait, it returns the batch whose flush writes it (nil when none will:
// the directory is closed, or degraded and the error says so).
func (d *Directory) apply(change func(), wait bool) (*batch, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	change()
	if d.degraded || !wait {
		var err error
		if d.degraded && wait {
			err = d.downErr
		}
		d.mu.Unlock()
		d.poke()
		return nil, err
	}
	if d.pending == nil {
		d.pending = &batch{done: make(chan struct{})}
	}
	b := d.pending
	d.mu.Unlock()
	d.poke()
	return b, nil
}

func (d *Directory) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Holders lists the registered nodes that hold object id, sorted by node
// name, with their addresses. A location whose node is no longer registered
// is never returned. The list may include this node. Like every read, it
// waits for etcd at most the operation timeout (then an *UnavailableError).
func (d *Directory) Holders(parent context.Context, id [20]byte) ([]Location, error) {
	if err := d.usable(); err != nil {
		return nil, err
	}
	ctx, cancel := d.opCtx(parent)
	defer cancel()
	what := fmt.Sprintf("holders of %x", id)
	resp, err := d.cli.Get(ctx, d.objectPrefix(id), clientv3.WithPrefix())
	if err != nil {
		return nil, d.failed(parent, what, err)
	}
	type rec struct {
		Size   uint64 `json:"size"`
		Digest string `json:"digest"`
	}
	recs := map[string]rec{}
	names := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), d.objectPrefix(id))
		var r rec
		if err := json.Unmarshal(kv.Value, &r); err != nil || name == "" || strings.Contains(name, "/") {
			d.log.Warn("ignoring malformed location", "key", string(kv.Key), "err", err)
			continue
		}
		recs[name] = r
		names = append(names, name)
	}
	nodes, err := d.nodesNamed(ctx, names)
	if err != nil {
		return nil, d.failed(parent, what, err)
	}
	out := make([]Location, 0, len(nodes))
	for _, n := range nodes {
		r := recs[n.Name]
		out = append(out, Location{Node: n.Name, Address: n.Address, Size: r.Size, Digest: r.Digest})
	}
	return out, nil
}

// Nodes lists the registered nodes, sorted by name.
func (d *Directory) Nodes(parent context.Context) ([]Node, error) {
	if err := d.usable(); err != nil {
		return nil, err
	}
	ctx, cancel := d.opCtx(parent)
	defer cancel()
	resp, err := d.cli.Get(ctx, d.prefix+"nodes/", clientv3.WithPrefix())
	if err != nil {
		return nil, d.failed(parent, "nodes", err)
	}
	out := make([]Node, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		n, err := parseNode(kv.Value)
		if err != nil {
			d.log.Warn("ignoring malformed node record", "key", string(kv.Key), "err", err)
			continue
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// GroupMembers lists the registered nodes in group, sorted by name.
func (d *Directory) GroupMembers(parent context.Context, group string) ([]Node, error) {
	if err := d.usable(); err != nil {
		return nil, err
	}
	if err := validName("group", group); err != nil {
		return nil, err
	}
	ctx, cancel := d.opCtx(parent)
	defer cancel()
	what := fmt.Sprintf("members of group %q", group)
	p := d.prefix + "groups/" + group + "/"
	resp, err := d.cli.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, d.failed(parent, what, err)
	}
	names := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if name := strings.TrimPrefix(string(kv.Key), p); name != "" && !strings.Contains(name, "/") {
			names = append(names, name)
		}
	}
	nodes, err := d.nodesNamed(ctx, names)
	if err != nil {
		return nil, d.failed(parent, what, err)
	}
	return nodes, nil
}

// nodesNamed reads the records of the named nodes, leaving out those not
// registered, sorted by name.
func (d *Directory) nodesNamed(ctx context.Context, names []string) ([]Node, error) {
	slices.Sort(names)
	names = slices.Compact(names)
	out := make([]Node, 0, len(names))
	for len(names) > 0 {
		n := min(len(names), maxTxnOps)
		ops := make([]clientv3.Op, n)
		for i, name := range names[:n] {
			ops[i] = clientv3.OpGet(d.nodeKey(name))
		}
		resp, err := d.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, err
		}
		for _, r := range resp.Responses {
			for _, kv := range r.GetResponseRange().GetKvs() {
				node, err := parseNode(kv.Value)
				if err != nil {
					d.log.Warn("ignoring malformed node record", "key", string(kv.Key), "err", err)
					continue
				}
				out = append(out, node)
			}
		}
		names = names[n:]
	}
	return out, nil
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
	d.cancel()
	<-d.done
	return true
}

func (d *Directory) currentLease() clientv3.LeaseID {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lease
}

// failPending fails the waiters of the next flush. d.mu held.
func (d *Directory) failPending(err error) {
	if d.pending != nil {
		d.pending.err = err
		close(d.pending.done)
		d.pending = nil
	}
}

// revokeOwned revokes every lease the directory granted.
func (d *Directory) revokeOwned(ctx context.Context) error {
	d.mu.Lock()
	ids := make([]clientv3.LeaseID, 0, len(d.owned))
	for id, stop := range d.owned {
		stop()
		ids = append(ids, id)
	}
	d.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := d.revoke(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// revoke revokes one lease and forgets it (also when etcd no longer has it).
func (d *Directory) revoke(ctx context.Context, id clientv3.LeaseID) error {
	_, err := d.cli.Revoke(ctx, id)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return err
	}
	d.mu.Lock()
	if stop, ok := d.owned[id]; ok {
		stop()
		delete(d.owned, id)
	}
	d.mu.Unlock()
	return nil
}

// ---- keys and records ----

func (d *Directory) nodeKey(name string) string { return d.prefix + "nodes/" + name }
func (d *Directory) groupKey(group, name string) string {
	return d.prefix + "groups/" + group + "/" + name
}
func (d *Directory) objectPrefix(id [20]byte) string {
	return d.prefix + "objects/" + hex.EncodeToString(id[:]) + "/"
}
func (d *Directory) objectKey(id [20]byte) string { return d.objectPrefix(id) + d.self.Name }

func nodeRecord(n Node) string {
	if n.Groups == nil {
		n.Groups = []string{}
	}
	b, _ := json.Marshal(n)
	return string(b)
}

func parseNode(b []byte) (Node, error) {
	var n Node
	if err := json.Unmarshal(b, &n); err != nil {
		return n, err
	}
	if n.Name == "" {
		return n, errors.New("no name")
	}
	return n, nil
}

func locationRecord(l loc) string {
	r := struct {
		Size   uint64 `json:"size"`
		Digest string `json:"digest"`
	}{Size: l.size}
	if l.hasDigest {
		r.Digest = hex.EncodeToString(l.digest[:])
	}
	b, _ := json.Marshal(r)
	return string(b)
}

func normGroups(gs []string) []string {
	out := slices.Clone(gs)
	slices.Sort(out)
	return slices.Compact(out)
}

// validName accepts names that are one key segment: non-empty UTF-8 without
// '/', spaces or control characters.
func validName(what, s string) error {
	if s == "" {
		return fmt.Errorf("cluster: empty %s name", what)
	}
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool {
		return r == '/' || unicode.IsSpace(r) || unicode.IsControl(r)
	}) >= 0 {
		return fmt.Errorf("cluster: bad %s name %q: no '/', spaces or control characters", what, s)
	}
	return nil
}

// ---- the background goroutine: keep-alive, flushes, recovery ----

// run owns every write to etcd after Open: it flushes changes in batches,
// watches the lease's keep-alive, checks the registration now and then, and
// when the lease is lost or a write fails, re-registers everything under a
// new lease, retrying with back-off until it works or Close.
func (d *Directory) run(ka <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(d.done)
	verify := time.NewTicker(max(3*d.ttl, 5*time.Second))
	defer verify.Stop()
	bo := backoff{min: 100 * time.Millisecond, max: min(max(d.ttl/2, time.Second), 5*time.Second)}
	needResync := false
	var retry <-chan time.Time
	failures := 0
	for {
		if needResync && retry == nil {
			nka, err := d.resync(d.ctx, false)
			switch {
			case err == nil:
				needResync, failures, ka = false, 0, nka
				bo.reset()
				d.log.Info("re-registered in the cluster directory", "locations", d.LocalLocations(), "lease", fmt.Sprintf("%x", int64(d.currentLease())))
			case d.ctx.Err() != nil:
				return
			case d.cli.Ctx().Err() != nil:
				d.log.Error("etcd client closed; the node is no longer kept in the cluster directory")
				<-d.stop
				return
			default:
				failures++
				delay := bo.next()
				lvl := slog.LevelWarn
				if errors.Is(err, ErrNameTaken) {
					lvl = slog.LevelError
				}
				if failures <= 3 || failures%10 == 0 || errors.Is(err, ErrNameTaken) {
					d.log.Log(d.ctx, lvl, "cannot re-register in the cluster directory; retrying", "err", err, "attempt", failures, "retry_in", delay.Round(time.Millisecond))
				}
				retry = time.After(delay)
			}
		}
		select {
		case <-d.stop:
			return
		case <-retry:
			retry = nil
		case _, ok := <-ka:
			if !ok {
				ka = nil
				if d.ctx.Err() != nil {
					return
				}
				d.log.Warn("cluster directory lease lost (etcd unreachable for longer than the TTL, or restarted without it); re-registering", "ttl", d.ttl)
				needResync = true
				d.setDegraded(ErrUnavailable)
			}
		case <-d.wake:
			if needResync {
				continue // the resync writes everything
			}
			if d.overflowed() {
				d.log.Warn("more location changes waiting than a flush takes; rewriting everything", "limit", maxDirty)
				needResync = true
				d.setDegraded(ErrUnavailable)
				continue
			}
			if err := d.flush(); err != nil {
				if d.ctx.Err() != nil {
					return
				}
				d.log.Warn("cluster directory write failed; will re-register everything", "err", err)
				needResync = true
			}
		case <-verify.C:
			if needResync {
				continue
			}
			if err := d.verify(); err != nil {
				d.log.Warn("cluster directory registration changed behind our back; re-registering", "err", err)
				needResync = true
				d.setDegraded(ErrUnavailable)
			}
		}
	}
}

func (d *Directory) overflowed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.overflow
}

func (d *Directory) setDegraded(cause error) {
	err, ok := cause.(*UnavailableError)
	if !ok {
		err = d.unavailable(cause)
	}
	d.mu.Lock()
	d.degraded, d.downErr = true, err
	d.failPending(err)
	d.mu.Unlock()
}

// rpcCtx bounds one etcd call made by the background goroutine: the TTL,
// within [2 s, 5 s]. A call that times out only makes the directory write
// everything again later.
func (d *Directory) rpcCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, min(max(d.ttl, 2*time.Second), 5*time.Second))
}

// flush writes the dirty part of the in-memory state under the current
// lease and tells the waiters.
func (d *Directory) flush() error {
	d.mu.Lock()
	b := d.pending
	d.pending = nil
	lease := d.lease
	var ops []clientv3.Op
	if d.dirtyNode {
		ops = append(ops, d.nodeOps(lease)...)
		for g := range d.removedGroups {
			ops = append(ops, clientv3.OpDelete(d.groupKey(g, d.self.Name)))
		}
		d.dirtyNode = false
		clear(d.removedGroups)
	}
	for id := range d.dirtyObjs {
		if l, ok := d.objects[id]; ok {
			ops = append(ops, clientv3.OpPut(d.objectKey(id), locationRecord(l), clientv3.WithLease(lease)))
		} else {
			ops = append(ops, clientv3.OpDelete(d.objectKey(id)))
		}
	}
	clear(d.dirtyObjs)
	d.mu.Unlock()

	err := d.commit(d.ctx, ops)
	if err != nil {
		err = d.unavailable(err)
		d.setDegraded(err)
	}
	if b != nil {
		b.err = err
		close(b.done)
	}
	return err
}

// nodeOps writes the node record and its group keys. d.mu held.
func (d *Directory) nodeOps(lease clientv3.LeaseID) []clientv3.Op {
	ops := []clientv3.Op{clientv3.OpPut(d.nodeKey(d.self.Name), nodeRecord(d.self), clientv3.WithLease(lease))}
	for _, g := range d.self.Groups {
		ops = append(ops, clientv3.OpPut(d.groupKey(g, d.self.Name), "{}", clientv3.WithLease(lease)))
	}
	return ops
}

// commit runs ops in transactions of at most maxTxnOps.
func (d *Directory) commit(parent context.Context, ops []clientv3.Op) error {
	for len(ops) > 0 {
		n := min(len(ops), maxTxnOps)
		ctx, cancel := d.rpcCtx(parent)
		_, err := d.cli.Txn(ctx).Then(ops[:n]...).Commit()
		cancel()
		if err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// verify checks that the node record is still ours.
func (d *Directory) verify() error {
	ctx, cancel := context.WithTimeout(d.ctx, 2*time.Second)
	defer cancel()
	resp, err := d.cli.Get(ctx, d.nodeKey(d.self.Name))
	if err != nil {
		return nil // unreachable: the keep-alive will tell if the lease goes
	}
	d.mu.Lock()
	lease := d.lease
	d.mu.Unlock()
	if len(resp.Kvs) == 0 {
		return errors.New("node record missing")
	}
	if l := clientv3.LeaseID(resp.Kvs[0].Lease); l != lease {
		return fmt.Errorf("node record under lease %x, ours is %x", int64(l), int64(lease))
	}
	return nil
}

// resync grants a new lease and writes the whole in-memory state under it
// (node record, groups, every location), then switches to it and revokes
// the old lease, which deletes whatever the old lease still carried that is
// no longer wanted (a location removed while etcd was unreachable). With
// takeover, a node record of the same name under a lease we do not own
// (a previous incarnation of this node) is taken over by revoking that
// lease; without it, ErrNameTaken.
func (d *Directory) resync(parent context.Context, takeover bool) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	if err := d.cli.Ctx().Err(); err != nil {
		return nil, fmt.Errorf("etcd client closed: %w", err)
	}
	ctx, cancel := d.rpcCtx(parent)
	grant, err := d.cli.Grant(ctx, int64(d.ttl/time.Second))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("grant lease: %w", err)
	}
	lease := grant.ID
	kaCtx, kaCancel := context.WithCancel(d.ctx)
	d.mu.Lock()
	d.owned[lease] = kaCancel
	d.mu.Unlock()
	fail := func(err error) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if d.revoke(ctx, lease) != nil {
			// Unreachable: without keep-alive it expires within the TTL.
			d.mu.Lock()
			kaCancel()
			d.mu.Unlock()
		}
		return nil, err
	}
	ka, err := d.cli.KeepAlive(kaCtx, lease)
	if err != nil {
		return fail(fmt.Errorf("keep lease alive: %w", err))
	}

	// Take a snapshot of the state; changes from now on are dirty again and
	// flushed under the new lease after the switch.
	d.mu.Lock()
	nodeOps := d.nodeOps(lease)
	objOps := make([]clientv3.Op, 0, len(d.objects))
	for id, l := range d.objects {
		objOps = append(objOps, clientv3.OpPut(d.objectKey(id), locationRecord(l), clientv3.WithLease(lease)))
	}
	d.dirtyNode = false
	clear(d.removedGroups)
	clear(d.dirtyObjs)
	d.overflow = false
	d.mu.Unlock()

	if err := d.register(parent, nodeOps[0], takeover); err != nil {
		return fail(err)
	}
	if err := d.commit(parent, append(nodeOps[1:], objOps...)); err != nil {
		return fail(fmt.Errorf("write groups and locations: %w", err))
	}

	d.mu.Lock()
	old := d.lease
	d.lease = lease
	d.degraded, d.downErr = false, nil
	stale := make([]clientv3.LeaseID, 0, len(d.owned))
	for id := range d.owned {
		if id != lease {
			stale = append(stale, id)
		}
	}
	dirty := d.dirtyNode || len(d.dirtyObjs) > 0 || d.overflow
	d.mu.Unlock()
	for _, id := range stale {
		ctx, cancel := d.rpcCtx(parent)
		if err := d.revoke(ctx, id); err != nil {
			d.log.Debug("revoke old lease failed; it expires by itself", "lease", fmt.Sprintf("%x", int64(id)), "err", err)
			d.mu.Lock()
			if stop, ok := d.owned[id]; ok {
				stop()
			}
			d.mu.Unlock()
		}
		cancel()
	}
	if old != 0 && len(stale) == 0 {
		d.log.Debug("old lease already gone", "lease", fmt.Sprintf("%x", int64(old)))
	}
	if dirty {
		d.poke()
	}
	return ka, nil
}

// register writes the node record under put's lease if the name is free or
// held by a lease of ours (or, with takeover, anyone's: that lease is
// revoked first).
func (d *Directory) register(parent context.Context, put clientv3.Op, takeover bool) error {
	key := d.nodeKey(d.self.Name)
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := d.rpcCtx(parent)
		resp, err := d.cli.Get(ctx, key)
		cancel()
		if err != nil {
			return fmt.Errorf("read node record: %w", err)
		}
		var cmp clientv3.Cmp
		if len(resp.Kvs) == 0 {
			cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		} else {
			holder := clientv3.LeaseID(resp.Kvs[0].Lease)
			d.mu.Lock()
			_, ours := d.owned[holder]
			d.mu.Unlock()
			if !ours && holder != 0 {
				if !takeover {
					return fmt.Errorf("%w (node record %s under lease %x, not ours)", ErrNameTaken, key, int64(holder))
				}
				d.log.Warn("taking over the node name from a previous registration", "lease", fmt.Sprintf("%x", int64(holder)), "record", string(resp.Kvs[0].Value))
				ctx, cancel := d.rpcCtx(parent)
				_, err := d.cli.Revoke(ctx, holder)
				cancel()
				if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
					return fmt.Errorf("revoke the previous registration's lease: %w", err)
				}
				continue
			}
			cmp = clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)
		}
		ctx, cancel = d.rpcCtx(parent)
		tr, err := d.cli.Txn(ctx).If(cmp).Then(put).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("write node record: %w", err)
		}
		if tr.Succeeded {
			return nil
		}
	}
	return errors.New("node record keeps changing under us")
}

// backoff is an exponential back-off with jitter.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }
