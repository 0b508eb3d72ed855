package bridge

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/store"
)

// States of a blob in the replication report.
const (
	StateQueued     = "queued"     // waiting for a free fetch slot
	StateFetching   = "fetching"   // a fetch is running (Bytes so far)
	StateFailed     = "failed"     // the last attempt failed (Error); another follows
	StateReplicated = "replicated" // fetched here
	StateHeld       = "held"       // it was here already
)

// blob is one announced blob, as this node knows it. Its fields are
// guarded by Bridge.mu, except inflight.
type blob struct {
	hash     store.Digest
	size     uint64
	name     string
	subjects map[string]bool
	holders  []Holder // in the order they were announced
	state    string
	attempts int
	err      string
	resumed  uint64
	seconds  float64
	running  bool          // a replicate goroutine owns the blob
	wake     chan struct{} // a new holder: try again now
	inflight atomic.Int64  // bytes verified by the running attempt
}

// onAnnouncement handles the messages of one subscription's
// <prefix>.<kind>.<pattern>.
func (b *Bridge) onAnnouncement(sub Subscription, kind string) nats.MsgHandler {
	strip := b.cfg.Prefix + "." + kind + "."
	return func(m *nats.Msg) {
		subject := strings.TrimPrefix(m.Subject, strip)
		a, err := DecodeAnnouncement(m.Data, subject)
		if err != nil {
			b.m.announcements.WithLabelValues("malformed").Inc()
			b.log.Warn("ignoring a malformed announcement", "subject", m.Subject, "err", err)
			return
		}
		if a.Node == b.cfg.Node {
			// Our own, come back: neither acted on nor refused (a keyed
			// node need not trust its own key, nor be a publisher of its
			// subscriptions). An announcement forged under our name is
			// skipped too, which only loses the forger's message.
			return
		}
		if why := b.refuse(sub, &a); why != "" {
			b.m.announcements.WithLabelValues("refused").Inc()
			b.log.Warn("ignoring an announcement", "subject", m.Subject, "node", a.Node, "why", why)
			return
		}
		b.m.announcements.WithLabelValues("accepted").Inc()
		b.learn(&a)
	}
}

// refuse says why an announcement is not acted on, or "".
func (b *Bridge) refuse(sub Subscription, a *Announcement) string {
	if b.cfg.Trusted == nil && len(sub.Publishers) == 0 {
		return ""
	}
	key, ok := a.Signer()
	switch {
	case !ok && a.Sig == "":
		return "unsigned, and this node accepts only signed announcements"
	case !ok:
		return "its signature does not verify"
	case b.cfg.Trusted != nil && !b.cfg.Trusted(key):
		return fmt.Sprintf("signed by %s, which the trust file does not hold", key)
	case len(sub.Publishers) > 0 && !slices.Contains(sub.Publishers, key):
		return fmt.Sprintf("signed by %s, not a publisher of subscription %s", key, sub.Subject)
	}
	return ""
}

// learn records a holder of a blob and starts replicating it if it is
// new here. A repeated announcement changes nothing.
func (b *Bridge) learn(a *Announcement) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bl := b.blobs[a.Hash]
	if bl == nil {
		bl = &blob{hash: a.Hash, size: a.Size, name: a.Name, subjects: map[string]bool{}, state: StateQueued, wake: make(chan struct{}, 1)}
		b.blobs[a.Hash] = bl
	}
	bl.subjects[a.Subject] = true
	if bl.name == "" {
		bl.name = a.Name
	}
	h := Holder{Node: a.Node, Addr: a.Addr, Via: "announcement"}
	i := slices.IndexFunc(bl.holders, func(x Holder) bool { return x.Node == a.Node })
	switch {
	case i < 0:
		bl.holders = append(bl.holders, h)
	case bl.holders[i] == h:
		return // known: nothing to do
	default:
		bl.holders[i] = h // moved
	}
	switch {
	case bl.running:
		select { // a failed attempt waiting for its backoff tries again now
		case bl.wake <- struct{}{}:
		default:
		}
	case bl.state != StateHeld && bl.state != StateReplicated:
		b.start(bl)
	default: // a new holder of a blob here: is it still here?
		b.spawnLocked(func() { b.recheck(bl) })
	}
}

// start runs replicate for bl; b.mu is held.
func (b *Bridge) start(bl *blob) {
	if b.closed {
		return
	}
	bl.running = true
	b.spawnLocked(func() { b.replicate(bl) })
}

// recheck replicates bl again if it is no longer in the store (deleted or
// evicted since).
func (b *Bridge) recheck(bl *blob) {
	st, release, err := b.cfg.Store()
	if err != nil {
		return
	}
	ok, err := st.Contains(b.ctx, store.ObjectID(bl.hash[:store.IDSize]))
	release()
	if err != nil || ok {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !bl.running {
		bl.state = StateQueued
		b.start(bl)
	}
}

// replicate fetches bl until it is here or the bridge closes: after a
// failure it waits (1 s, doubling up to RetryMax) or until a new holder
// is announced, and tries again from every holder known, resuming from
// the groups already verified.
func (b *Bridge) replicate(bl *blob) {
	id := store.ObjectID(bl.hash[:store.IDSize])
	backoff := time.Second
	for {
		select {
		case b.work <- struct{}{}:
		case <-b.ctx.Done():
			b.stopped(bl)
			return
		}
		b.mu.Lock()
		sources := make([]streamwire.PullSource, len(bl.holders))
		for i, h := range bl.holders {
			sources[i] = streamwire.PullSource{Node: h.Node, Addr: h.Addr, Full: true}
		}
		bl.state, bl.attempts = StateFetching, bl.attempts+1
		bl.inflight.Store(0)
		b.mu.Unlock()
		start := time.Now()
		res := b.cfg.Fetch(b.ctx, id, sources, bl.hash, func(n int64) { bl.inflight.Add(n); b.m.bytes.Add(float64(n)) })
		<-b.work
		b.mu.Lock()
		if res.Status.Success() {
			bl.state, bl.err, bl.running = StateReplicated, "", false
			if res.Status == streamwire.StatusAlreadyPresent {
				bl.state = StateHeld
			}
			bl.resumed, bl.seconds = res.Resumed, time.Since(start).Seconds()
			subjects := sortedKeys(bl.subjects)
			b.mu.Unlock()
			b.m.replications.WithLabelValues(bl.state).Inc()
			b.log.Info("replicated", "hash", bl.hash, "size", bl.size, "state", bl.state, "resumed", res.Resumed, "sources", len(sources))
			if res.Status == streamwire.StatusOK {
				b.reportReplicated(bl, subjects, res.Bytes, res.Resumed, time.Since(start))
			}
			return
		}
		bl.state, bl.err = StateFailed, res.Message
		if bl.err == "" {
			bl.err = res.Status.String()
		}
		b.mu.Unlock()
		b.m.replications.WithLabelValues(StateFailed).Inc()
		b.log.Warn("replication failed; will try again", "hash", bl.hash, "err", res.Message, "retry_in", backoff)
		select {
		case <-b.ctx.Done():
			b.stopped(bl)
			return
		case <-bl.wake:
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, b.cfg.RetryMax)
	}
}

func (b *Bridge) stopped(bl *blob) {
	b.mu.Lock()
	bl.running = false
	if bl.state != StateFailed {
		bl.state, bl.err = StateFailed, "the node stopped"
	}
	b.mu.Unlock()
}

// reportReplicated publishes on <prefix>.replicated.<subject>, for each
// subject the blob was announced on, that this node now holds it.
func (b *Bridge) reportReplicated(bl *blob, subjects []string, n, resumed uint64, took time.Duration) {
	for _, s := range subjects {
		a := Announcement{Hash: bl.hash, Size: bl.size, Name: bl.name, Subject: s, Node: b.cfg.Node, Addr: b.cfg.Addr,
			Replicated: true, Bytes: n, Resumed: resumed, Seconds: took.Seconds()}
		if err := b.publish("replicated", &a); err != nil {
			b.log.Warn("report a replicated blob", "subject", s, "err", err)
		}
	}
}

// announced lists the holders announcements named for id.
func (b *Bridge) announced(id store.ObjectID) []Holder {
	b.mu.Lock()
	defer b.mu.Unlock()
	for h, bl := range b.blobs {
		if store.ObjectID(h[:store.IDSize]) == id {
			return slices.Clone(bl.holders)
		}
	}
	return nil
}

// Replication is the reply to <prefix>.replication: this node's view of
// the blobs announced on the subjects it subscribes to.
type Replication struct {
	Node          string               `json:"node"`
	Subscriptions []string             `json:"subscriptions"`
	Subjects      []SubjectReplication `json:"subjects"`
}

// SubjectReplication is the blobs announced on one subject.
type SubjectReplication struct {
	Subject string            `json:"subject"`
	Blobs   []BlobReplication `json:"blobs"`
}

// BlobReplication is one blob: who holds it and how its replication here
// goes.
type BlobReplication struct {
	Hash     store.Digest   `json:"hash"`
	ID       store.ObjectID `json:"id"`
	Size     uint64         `json:"size"`
	Name     string         `json:"name,omitempty"`
	State    string         `json:"state"`
	Holders  []Holder       `json:"holders"`
	Bytes    uint64         `json:"bytes,omitempty"`   // verified so far by the running attempt
	Resumed  uint64         `json:"resumed,omitempty"` // verified before the attempt that succeeded
	Attempts int            `json:"attempts"`
	Error    string         `json:"error,omitempty"` // why the last attempt failed
	Seconds  float64        `json:"seconds,omitempty"`
}

// Report is the replication report, for subjects matching filter ("":
// all).
func (b *Bridge) Report(filter string) Replication {
	r := Replication{Node: b.cfg.Node, Subscriptions: []string{}, Subjects: []SubjectReplication{}}
	for _, s := range b.cfg.Subscribe {
		r.Subscriptions = append(r.Subscriptions, s.Subject)
	}
	by := map[string][]BlobReplication{}
	b.mu.Lock()
	for _, bl := range b.blobs {
		br := BlobReplication{Hash: bl.hash, ID: store.ObjectID(bl.hash[:store.IDSize]), Size: bl.size, Name: bl.name, State: bl.state,
			Holders: slices.Clone(bl.holders), Attempts: bl.attempts, Error: bl.err, Resumed: bl.resumed, Seconds: bl.seconds}
		if bl.state == StateFetching {
			br.Bytes = uint64(bl.inflight.Load())
		}
		if bl.state == StateHeld || bl.state == StateReplicated {
			br.Holders = append(br.Holders, Holder{Node: b.cfg.Node, Addr: b.cfg.Addr, Via: "local"})
		}
		for s := range bl.subjects {
			if filter == "" || matches(filter, s) {
				by[s] = append(by[s], br)
			}
		}
	}
	b.mu.Unlock()
	for _, s := range sortedKeys(by) {
		blobs := by[s]
		slices.SortFunc(blobs, func(x, y BlobReplication) int { return bytes.Compare(x.Hash[:], y.Hash[:]) })
		r.Subjects = append(r.Subjects, SubjectReplication{Subject: s, Blobs: blobs})
	}
	return r
}

func (b *Bridge) handleReplication(m *nats.Msg) any {
	filter := string(bytes.TrimSpace(m.Data))
	if filter != "" {
		if err := checkPattern(filter); err != nil {
			return failed(fmt.Errorf("replication: %w", err))
		}
	}
	return b.Report(filter)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
