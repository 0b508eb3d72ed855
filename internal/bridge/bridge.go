package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/plasmastream/plasmastream/store"
)

// Bridge is a node's NATS bridge (see the package doc).
type Bridge struct {
	cfg    Config
	nc     *nats.Conn
	log    *slog.Logger
	ctx    context.Context // ends with Close: the fetches and requests in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup
	subs   []*nats.Subscription
	m      *metrics
	work   chan struct{} // a slot per blob fetched at once
	imps   chan struct{} // a slot per import at once

	mu     sync.Mutex
	closed bool                   // Close has begun: no new goroutines
	blobs  map[store.Digest]*blob // every blob announced on a subscribed subject
}

// queueGroup is the queue group of the request subjects without a node
// token: one node of those on the NATS answers each request.
const queueGroup = "plasma-bridge"

// importConcurrency bounds the imports that read files at once.
const importConcurrency = 2

// New starts the bridge on nc: it serves the request subjects and
// subscribes to cfg.Subscribe. Close stops it.
func New(cfg Config, nc *nats.Conn) (*Bridge, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bridge{cfg: cfg, nc: nc, log: cfg.Logger.With("component", "bridge"), blobs: map[store.Digest]*blob{},
		work: make(chan struct{}, cfg.Concurrency), imps: make(chan struct{}, importConcurrency)}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.m = newMetrics(b)
	b.m.register(cfg.Registerer)
	requests := map[string]func(*nats.Msg) any{
		"import": b.handleImport, "announce": b.handleAnnounce, "locate": b.handleLocate,
		"stat": b.handleStat, "replication": b.handleReplication,
	}
	for op, h := range requests {
		if err := b.serve(op, h); err != nil {
			b.Close()
			return nil, err
		}
	}
	js := b.keepAnnouncements() // also on a node that only publishes: kept from the first announcement
	for _, s := range cfg.Subscribe {
		for _, kind := range []string{"blobs", "replicated"} {
			sub, err := b.follow(js, cfg.Prefix+"."+kind+"."+s.Subject, b.onAnnouncement(s, kind))
			if err != nil {
				b.Close()
				return nil, fmt.Errorf("subscribe to %s.%s.%s: %w", cfg.Prefix, kind, s.Subject, err)
			}
			b.subs = append(b.subs, sub)
		}
	}
	if err := nc.Flush(); err != nil && !errors.Is(err, nats.ErrConnectionReconnecting) {
		b.log.Warn("NATS did not confirm the bridge's subscriptions yet; they are made when it answers", "err", err)
	}
	b.log.Info("NATS bridge", "prefix", cfg.Prefix, "subscriptions", len(cfg.Subscribe), "signed", cfg.Identity != nil, "kept", js != nil)
	return b, nil
}

// serve answers <prefix>.<op> (in the queue group) and
// <prefix>.<op>.<node>, each request on a goroutine of its own.
func (b *Bridge) serve(op string, h func(*nats.Msg) any) error {
	handler := func(m *nats.Msg) {
		if m.Reply == "" {
			return // a publish, not a request: nowhere to answer
		}
		b.spawn(func() {
			r := h(m)
			result := "ok"
			if _, failed := r.(errorReply); failed {
				result = "error"
			}
			b.m.requests.WithLabelValues(op, result).Inc()
			reply, err := json.Marshal(r)
			if err != nil {
				reply, _ = json.Marshal(errorReply{Error: err.Error()})
			}
			if err := m.Respond(reply); err != nil {
				b.log.Warn("reply to a NATS request", "subject", m.Subject, "err", err)
			}
		})
	}
	subject := b.cfg.Prefix + "." + op
	sub, err := b.nc.QueueSubscribe(subject, queueGroup, handler)
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	b.subs = append(b.subs, sub)
	if sub, err = b.nc.Subscribe(subject+"."+token(b.cfg.Node), handler); err != nil {
		return fmt.Errorf("subscribe to %s.%s: %w", subject, token(b.cfg.Node), err)
	}
	b.subs = append(b.subs, sub)
	return nil
}

// Close unsubscribes, cancels the fetches and requests in flight and
// waits for them.
func (b *Bridge) Close() {
	for _, s := range b.subs {
		s.Unsubscribe()
	}
	b.mu.Lock()
	b.closed = true // a handler still running starts nothing more
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
}

// spawn runs f on a goroutine Close waits for, unless Close has begun.
func (b *Bridge) spawn(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.spawnLocked(f)
}

// spawnLocked is spawn with b.mu held.
func (b *Bridge) spawnLocked(f func()) {
	if b.closed {
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

// errorReply is the reply to a request that failed.
type errorReply struct {
	Error string `json:"error"`
}

func failed(err error) any { return errorReply{Error: err.Error()} }

// useStore runs f with the local store.
func (b *Bridge) useStore(f func(*store.Client) any) any {
	st, release, err := b.cfg.Store()
	if err != nil {
		return failed(fmt.Errorf("the local store of %s is unavailable: %w", b.cfg.Node, err))
	}
	defer release()
	return f(st)
}

func (b *Bridge) handleImport(m *nats.Msg) any {
	req, err := DecodeImport(m.Data)
	if err != nil {
		return failed(fmt.Errorf("import: %w", err))
	}
	select {
	case b.imps <- struct{}{}:
		defer func() { <-b.imps }()
	case <-b.ctx.Done():
		return failed(errors.New("import: the node is stopping"))
	}
	return b.useStore(func(st *store.Client) any {
		im, err := importFile(b.ctx, st, req.Path, b.cfg.ImportDirs)
		if err != nil {
			return failed(fmt.Errorf("import %w", err))
		}
		b.log.Info("imported", "path", req.Path, "id", im.ID, "size", im.Size, "existed", im.Existed)
		if req.Announce != "" {
			name := req.Name
			if name == "" {
				name = filepath.Base(req.Path)
			}
			a, err := b.announce(im.Hash, im.Size, req.Announce, name)
			if err != nil {
				return failed(fmt.Errorf("imported %s as %s, but %w", req.Path, im.ID, err))
			}
			im.Announced = &a
		}
		return im
	})
}

func (b *Bridge) handleAnnounce(m *nats.Msg) any {
	req, err := DecodeAnnounceRequest(m.Data)
	if err != nil {
		return failed(fmt.Errorf("announce: %w", err))
	}
	id, hash, _ := ParseObject(req.Object)
	return b.useStore(func(st *store.Client) any {
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		defer cancel()
		info, err := statObject(ctx, st, id)
		if err != nil {
			return failed(fmt.Errorf("announce: %w", err))
		}
		if !hash.IsZero() && hash != info.Hash {
			return failed(fmt.Errorf("announce: object %s has hash %s, not %s", id, info.Hash, hash))
		}
		if info.ID != store.ObjectID(info.Hash[:store.IDSize]) {
			return failed(fmt.Errorf("announce: object %s is not stored under its content address (its hash is %s): import it, or put it with plasma import", id, info.Hash))
		}
		a, err := b.announce(info.Hash, info.Size, req.Subject, req.Name)
		if err != nil {
			return failed(fmt.Errorf("announce: %w", err))
		}
		return a
	})
}

// announce publishes that this node holds a blob.
func (b *Bridge) announce(hash store.Digest, size uint64, subject, name string) (Announcement, error) {
	if err := CheckSubject(subject); err != nil {
		return Announcement{}, err
	}
	if !b.mayPublish(subject) {
		return Announcement{}, fmt.Errorf("%s does not publish on %q (its publish.subjects: %v)", b.cfg.Node, subject, b.cfg.Publish)
	}
	a := Announcement{Hash: hash, Size: size, Name: name, Subject: subject, Node: b.cfg.Node, Addr: b.cfg.Addr}
	if err := b.publish("blobs", &a); err != nil {
		return Announcement{}, err
	}
	b.log.Info("announced", "subject", subject, "hash", hash, "size", size, "name", name)
	return a, nil
}

func (b *Bridge) mayPublish(subject string) bool {
	if len(b.cfg.Publish) == 0 {
		return true
	}
	for _, p := range b.cfg.Publish {
		if matches(p, subject) {
			return true
		}
	}
	return false
}

// publish signs a (with the node's key, if any) and publishes it on
// <prefix>.<kind>.<subject>. While NATS is reconnecting the message waits
// in the connection's buffer.
func (b *Bridge) publish(kind string, a *Announcement) error {
	if b.cfg.Identity != nil {
		a.Sign(*b.cfg.Identity)
	}
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := b.nc.Publish(b.cfg.Prefix+"."+kind+"."+a.Subject, data); err != nil {
		return fmt.Errorf("publish on %s.%s.%s: %w", b.cfg.Prefix, kind, a.Subject, err)
	}
	return nil
}
