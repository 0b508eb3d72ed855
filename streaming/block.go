package streaming

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Block is one numbered batch of changes, as the node committed it.
type Block struct {
	Number   uint64
	Node     string
	Time     time.Time // when it closed
	Start    bool      // the first block since the node started
	Snapshot bool      // its `objects` pairs are the store's whole content
	// Pairs are grouped by store key in name order (as Cosmos writes
	// them), each store's in the order its changes happened.
	Pairs []StoreKVPair
	size  int64 // encoded size, for queue bounds
}

// Filter returns the pairs of the given store keys (nil: all).
func (b *Block) Filter(keys []string) []StoreKVPair {
	if keys == nil {
		return b.Pairs
	}
	out := make([]StoreKVPair, 0, len(b.Pairs))
	for _, p := range b.Pairs {
		if slices.Contains(keys, p.StoreKey) {
			out = append(out, p)
		}
	}
	return out
}

// Meta is the block's meta record for a streamer that wrote pairs of it
// and committed prev before it.
func (b *Block) Meta(pairs []StoreKVPair, prev uint64, dataBytes int) BlockMeta {
	return BlockMeta{Block: b.Number, Node: b.Node, Time: b.Time, Start: b.Start, Snapshot: b.Snapshot,
		Prev: prev, Pairs: uint64(len(pairs)), DataBytes: uint64(dataBytes)}
}

// Defaults of CommitterConfig.
const (
	DefaultBlockInterval = time.Second
	DefaultBlockChanges  = 10000
)

// CommitterConfig configures a Committer.
type CommitterConfig struct {
	Node     string
	Interval time.Duration // a block closes this long after its first change; 0: DefaultBlockInterval
	Changes  int           // or when it holds this many changes; 0: DefaultBlockChanges
	Services []StreamingService
	Logger   *slog.Logger
}

// Committer gathers the node's changes into blocks and hands each block,
// in number order, to every service. Block numbers continue from the
// highest block any service already holds, so they only increase across
// restarts. Nothing is committed before the first Snapshot, which makes
// the Start block; an idle node commits nothing.
type Committer struct {
	cfg   CommitterConfig
	mu    sync.Mutex
	pend  []StoreKVPair
	first time.Time // of the oldest pending change
	kick  chan struct{}

	commitMu sync.Mutex // held while numbering and handing out a block
	next     uint64
	started  bool
	closed   bool
}

// NewCommitter asks every service for the highest block it holds.
func NewCommitter(cfg CommitterConfig) (*Committer, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultBlockInterval
	}
	if cfg.Changes <= 0 {
		cfg.Changes = DefaultBlockChanges
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var last uint64
	var unknown []error
	for _, s := range cfg.Services {
		n, err := s.LastBlock()
		var u *LastBlockUnknownError
		if errors.As(err, &u) {
			unknown = append(unknown, err)
			continue
		}
		if err != nil {
			return nil, err
		}
		last = max(last, n)
	}
	if len(unknown) > 0 {
		if len(unknown) == len(cfg.Services) {
			return nil, fmt.Errorf("%w; no other streamer holds the block numbers, and numbering from 1 again would clash with the blocks already there: make it reachable, or add the file streamer", errors.Join(unknown...))
		}
		for _, err := range unknown {
			cfg.Logger.Warn(err.Error() + "; numbering from the other streamers (stop-node-on-error = false)")
		}
	}
	return &Committer{cfg: cfg, next: last + 1, kick: make(chan struct{}, 1)}, nil
}

// LastBlockUnknownError is a service's LastBlock that could not ask its
// destination (stop-node-on-error = false): the other services number
// the blocks; a node with no other service does not start.
type LastBlockUnknownError struct{ Err error }

func (e *LastBlockUnknownError) Error() string { return e.Err.Error() }
func (e *LastBlockUnknownError) Unwrap() error { return e.Err }

// Next is the number the next block will get.
func (c *Committer) Next() uint64 {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	return c.next
}

// Set records a set of key in store.
func (c *Committer) Set(store string, key, value []byte) {
	c.add(StoreKVPair{StoreKey: store, Key: key, Value: value})
}

// Delete records a delete of key in store (value: why, or nil).
func (c *Committer) Delete(store string, key, value []byte) {
	c.add(StoreKVPair{StoreKey: store, Delete: true, Key: key, Value: value})
}

func (c *Committer) add(p StoreKVPair) {
	c.mu.Lock()
	if len(c.pend) == 0 {
		c.first = time.Now()
	}
	c.pend = append(c.pend, p)
	full := len(c.pend) >= c.cfg.Changes
	c.mu.Unlock()
	if full {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// Snapshot commits what is pending, then a block marked Snapshot holding
// objects (sets of the `objects` store: every object the store holds).
// The first Snapshot makes the Start block.
func (c *Committer) Snapshot(objects []StoreKVPair) {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	if c.started {
		for c.commitLocked(false, nil) {
		}
	}
	c.commitLocked(true, objects)
}

// Run commits a block each Interval after a change or when Changes are
// pending, until quit is closed; it then commits what is pending.
func (c *Committer) Run(wg *sync.WaitGroup, quit <-chan struct{}) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(c.cfg.Interval / 4)
		defer t.Stop()
		for {
			select {
			case <-quit:
				c.Flush()
				return
			case <-c.kick:
				c.flushFull()
			case <-t.C:
				c.mu.Lock()
				due := len(c.pend) > 0 && time.Since(c.first) >= c.cfg.Interval
				c.mu.Unlock()
				if due {
					c.Flush()
				}
			}
		}
	}()
}

// Flush commits the pending changes now, in blocks of at most Changes
// (nothing before the first Snapshot, nothing when none are pending).
func (c *Committer) Flush() {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	if c.started {
		for c.commitLocked(false, nil) {
		}
	}
}

// flushFull commits blocks of Changes changes while that many are
// pending; the rest waits for more changes or the interval.
func (c *Committer) flushFull() {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	for c.started {
		c.mu.Lock()
		full := len(c.pend) >= c.cfg.Changes
		c.mu.Unlock()
		if !full || !c.commitLocked(false, nil) {
			return
		}
	}
}

// commitLocked makes a block of the pending changes, at most Changes of
// them (a snapshot block: all of them and objects), hands it to every
// service, and reports whether it did.
func (c *Committer) commitLocked(snapshot bool, objects []StoreKVPair) bool {
	if c.closed {
		return false
	}
	c.mu.Lock()
	pend := c.pend
	if !snapshot && len(pend) > c.cfg.Changes {
		pend, c.pend = pend[:c.cfg.Changes:c.cfg.Changes], pend[c.cfg.Changes:]
	} else {
		c.pend = nil
	}
	c.mu.Unlock()
	if snapshot {
		// Changes of objects before the snapshot are superseded by it.
		pend = slices.DeleteFunc(pend, func(p StoreKVPair) bool { return !c.started && p.StoreKey == StoreObjects })
		pend = append(pend, objects...)
	} else if len(pend) == 0 {
		return false
	}
	slices.SortStableFunc(pend, func(a, b StoreKVPair) int {
		switch {
		case a.StoreKey < b.StoreKey:
			return -1
		case a.StoreKey > b.StoreKey:
			return 1
		}
		return 0
	})
	b := &Block{Number: c.next, Node: c.cfg.Node, Time: time.Now(), Start: !c.started, Snapshot: snapshot, Pairs: pend}
	for i := range pend {
		b.size += int64(pend[i].Size()) + 16
	}
	c.next++
	c.started = true
	for _, s := range c.cfg.Services {
		s.ListenBlock(b)
	}
	return true
}

// Close commits what is pending and closes every service (each writes
// what it holds, if it can).
func (c *Committer) Close() error {
	c.Flush()
	c.commitMu.Lock()
	c.closed = true
	c.commitMu.Unlock()
	var errs []error
	for _, s := range c.cfg.Services {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// blockQueue is a service's backlog of blocks, bounded in bytes: when a
// push goes over the bound, the oldest blocks are dropped (the service
// counts them lost; its next committed block records the gap).
type blockQueue struct {
	mu     sync.Mutex
	q      []*Block
	bytes  int64
	limit  int64
	closed bool
	ready  chan struct{}
}

func newBlockQueue(limit int64) *blockQueue {
	return &blockQueue{limit: limit, ready: make(chan struct{}, 1)}
}

// push queues b and returns the number of old blocks dropped for room.
func (q *blockQueue) push(b *Block) (dropped int) {
	q.mu.Lock()
	q.q = append(q.q, b)
	q.bytes += b.size
	for q.bytes > q.limit && len(q.q) > 1 {
		q.bytes -= q.q[0].size
		q.q[0] = nil
		q.q = q.q[1:]
		dropped++
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return dropped
}

// peek waits for the oldest block (without removing it: done does), or
// returns nil once the queue is closed and empty, or quit is closed.
func (q *blockQueue) peek(quit <-chan struct{}) *Block {
	for {
		q.mu.Lock()
		if len(q.q) > 0 {
			b := q.q[0]
			q.mu.Unlock()
			return b
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil
		}
		select {
		case <-q.ready:
		case <-quit:
			return nil
		}
	}
}

// done removes b if it is still the oldest (a push may have dropped it).
func (q *blockQueue) done(b *Block) {
	q.mu.Lock()
	if len(q.q) > 0 && q.q[0] == b {
		q.bytes -= b.size
		q.q[0] = nil
		q.q = q.q[1:]
	}
	q.mu.Unlock()
}

// backlog is what the queue holds: blocks committed and not yet
// delivered, and their bytes.
func (q *blockQueue) backlog() Backlog {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Backlog{Blocks: len(q.q), Bytes: q.bytes}
}

func (q *blockQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.q)
}

func (q *blockQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// serve runs a streamer's writer, run, until it returns (it returns once
// q is closed and drained); quit closes q. done is closed when run has
// returned; wg counts the writer.
func (q *blockQueue) serve(wg *sync.WaitGroup, quit <-chan struct{}, done chan struct{}, run func()) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		run()
	}()
	go func() {
		select {
		case <-quit:
			q.close()
		case <-done:
		}
	}()
}
