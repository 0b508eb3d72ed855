package streamserver

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/natsconn"
	"github.com/plasmastream/plasmastream/internal/node"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/streaming"
)

// stateStream is the server's state streaming (package streaming): the
// committer that gathers changes into blocks and the services it feeds.
// The store's events arrive on keepStore's goroutine, in order; the
// snapshot a subscription starts with makes a Snapshot block.
type stateStream struct {
	c    *streaming.Committer
	nats *natsconn.Conn // the server's (it closes it); nil without --nats
	wg   sync.WaitGroup
	quit chan struct{}
	snap []streaming.StoreKVPair // the snapshot being received

	stopWatch context.CancelFunc // ends the directory watch; nil: none
	watching  chan struct{}      // closed when it has ended

	lost atomic.Pointer[lostBlock] // the last block a service lost

	services []streaming.StreamingService
}

// lostBlock is a block a streaming service could not deliver.
type lostBlock struct {
	service string
	at      time.Time
}

// lostRecently is how long after a lost block /readyz reports it.
const lostRecently = time.Minute

// health is nil while the streamers deliver every block: NATS, if used,
// is connected, and no block was lost in the last minute.
func (ss *stateStream) health() error {
	if ss.nats != nil && !ss.nats.NC.IsConnected() {
		return fmt.Errorf("NATS at %s is not connected; blocks wait in memory (max-pending)", ss.nats.ClientURL())
	}
	if l := ss.lost.Load(); l != nil && time.Since(l.at) < lostRecently {
		return fmt.Errorf("streamer %s lost a block %s ago (see plasma_stream_state_blocks_lost_total)", l.service, time.Since(l.at).Round(time.Second))
	}
	return nil
}

// watch streams the cluster directory as n sees it (the locations,
// nodes and groups stores), when n is in a cluster.
func (ss *stateStream) watch(n *node.Node) {
	if ss == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	ss.stopWatch, ss.watching = cancel, make(chan struct{})
	go func() {
		defer close(ss.watching)
		n.WatchDirectory(ctx, func(c cluster.Change) {
			if c.Delete {
				ss.c.Delete(c.Section, []byte(c.Key), nil)
			} else {
				ss.c.Set(c.Section, []byte(c.Key), c.Value)
			}
		})
	}()
}

// startStreaming connects NATS (if configured) and starts the streaming
// services; with neither streamers nor embedded ones it returns nil.
func (s *Server) startStreaming(ctx context.Context) (*stateStream, error) {
	cfg := s.cfg
	if cfg.Streaming == nil && len(cfg.Streamers) == 0 {
		return nil, nil
	}
	ss := &stateStream{quit: make(chan struct{}), nats: s.nats}
	env := streaming.Env{Node: cfg.NodeName, Logger: s.log, Fail: s.fail,
		Errors: func(service string) {
			s.metrics.stateLost.WithLabelValues(service).Inc()
			ss.lost.Store(&lostBlock{service: service, at: time.Now()})
		}}
	if ss.nats != nil {
		env.NATS = ss.nats.NC
	}
	var services []streaming.StreamingService
	if cfg.Streaming != nil {
		var err error
		if services, err = streaming.LoadStreamingServices(cfg.Streaming, nil, env); err != nil {
			return nil, err
		}
	}
	services = append(services, cfg.Streamers...)
	if len(services) == 0 {
		return nil, nil
	}
	interval, changes := streaming.DefaultBlockInterval, streaming.DefaultBlockChanges
	if cfg.Streaming != nil {
		if v, ok := cfg.Streaming.Get(streaming.OptStoreBlockInterval).(time.Duration); ok && v > 0 {
			interval = v
		}
		if v, ok := cfg.Streaming.Get(streaming.OptStoreBlockChanges).(int); ok && v > 0 {
			changes = v
		}
	}
	c, err := streaming.NewCommitter(streaming.CommitterConfig{Node: cfg.NodeName, Interval: interval, Changes: changes,
		Services: services, Logger: s.log})
	if err == nil {
		for _, svc := range services {
			if err = svc.Stream(&ss.wg, ss.quit); err != nil {
				break
			}
		}
	}
	if err != nil {
		for _, svc := range services {
			svc.Close()
		}
		return nil, fmt.Errorf("state streaming: %w", err)
	}
	ss.c, ss.services = c, services
	c.Run(&ss.wg, ss.quit)
	s.log.Info("state streaming", "streamers", len(services), "first block", c.Next())
	return ss, nil
}

// event records a store event.
func (ss *stateStream) event(ev store.Event) {
	id := append([]byte(nil), ev.ID[:]...)
	switch ev.Kind {
	case store.EventPresent:
		ss.snap = append(ss.snap, streaming.StoreKVPair{StoreKey: streaming.StoreObjects, Key: id, Value: objectInfo(ev)})
	case store.EventSnapshotEnd:
		ss.c.Snapshot(ss.snap)
		ss.snap = nil
	case store.EventSealed, store.EventDigest:
		ss.c.Set(streaming.StoreObjects, id, objectInfo(ev))
	case store.EventDeleted, store.EventEvicted:
		r := streaming.ObjectRemoval{Reason: streaming.RemovedDeleted, Time: ev.Time}
		if ev.Kind == store.EventEvicted {
			r.Reason = streaming.RemovedEvicted
		}
		ss.c.Delete(streaming.StoreObjects, id, r.Append(nil))
	}
}

func objectInfo(ev store.Event) []byte {
	o := streaming.ObjectInfo{DataSize: ev.DataSize, MetadataSize: ev.MetadataSize}
	if !ev.Digest.IsZero() {
		o.Digest = ev.Digest[:]
	}
	if in := ev.Info; in != nil {
		o.Metadata, o.Created, o.Construct, o.CreatorPID = in.Metadata, in.Created, in.Construct, in.CreatorPID
	}
	return o.Append(nil)
}

// transferIn records a finished transfer into this node: a SYNC's peer
// request (kind COPY, TAKE, RELAY), a cluster FETCH or a PULL.
func (ss *stateStream) transferIn(kind string, r streamwire.PeerResult) {
	if ss == nil {
		return
	}
	t := streaming.Transfer{Direction: "in", Kind: kind, Peer: r.Addr, Bytes: r.Bytes,
		Duration: time.Duration(r.DurationNs), End: time.Now(), Status: statusText(r.Status, r.Message)}
	for _, o := range r.Objects {
		t.AddObject(streaming.TransferObject{ID: append([]byte(nil), o.ID[:]...), Bytes: o.Bytes, Status: statusText(o.Status, o.Message)})
	}
	ss.c.Set(streaming.StoreTransfers, streaming.TransferKey(t.End), t.Append(nil))
}

// sendStats is where a COPY/TAKE served counts: its own counters when
// state streaming records it (added to the server's after), else the
// server's.
func (s *Server) sendStats(own *transfer.Stats) *transfer.Stats {
	if s.state == nil {
		return &s.stats
	}
	return own
}

// transferOut records a COPY/TAKE served to peer (ids asked for; the
// sender knows the outcome of the whole request, not of each object, so
// each object has the request's status and sent counts the bytes).
func (s *Server) transferOut(peer string, kind streamwire.Kind, ids []streamwire.ID, start time.Time, sent *transfer.Stats, err error) {
	if s.state == nil {
		return
	}
	for _, p := range []struct{ from, to *atomic.Uint64 }{
		{&sent.BytesSent, &s.stats.BytesSent}, {&sent.ObjectsSent, &s.stats.ObjectsSent}, {&sent.DeletedOnTake, &s.stats.DeletedOnTake},
		{&sent.BytesReceived, &s.stats.BytesReceived}, {&sent.ObjectsReceived, &s.stats.ObjectsReceived},
		{&sent.IntegrityFailures, &s.stats.IntegrityFailures}, {&sent.BytesVerified, &s.stats.BytesVerified},
		{&sent.BytesRerequested, &s.stats.BytesRerequested}, {&sent.CorruptGroups, &s.stats.CorruptGroups},
	} {
		p.to.Add(p.from.Load())
	}
	status := streamwire.StatusOK.String()
	if err != nil {
		status = statusText(transfer.ErrStatus(err), err.Error())
	}
	t := streaming.Transfer{Direction: "out", Kind: kind.String(), Peer: peer, Bytes: sent.BytesSent.Load(),
		Duration: time.Since(start), End: time.Now(), Status: status}
	for _, id := range ids {
		t.AddObject(streaming.TransferObject{ID: append([]byte(nil), id[:]...), Status: status})
	}
	s.state.c.Set(streaming.StoreTransfers, streaming.TransferKey(t.End), t.Append(nil))
}

func statusText(st streamwire.Status, msg string) string {
	if msg == "" {
		return st.String()
	}
	return st.String() + ": " + msg
}

// close commits what is pending and lets every service write what it
// holds (the server closes NATS after).
func (ss *stateStream) close() {
	if ss == nil {
		return
	}
	if ss.stopWatch != nil {
		ss.stopWatch()
		<-ss.watching
	}
	ss.c.Close()
	close(ss.quit)
	ss.wg.Wait()
}

// fail stops the server because state streaming cannot go on
// (stop-node-on-error): Serve returns err once connections are closed.
func (s *Server) fail(err error) {
	s.failMu.Lock()
	first := s.failErr == nil
	if first {
		s.failErr = err
	}
	ln := s.ln
	s.failMu.Unlock()
	if first {
		s.log.Error("stopping the node", "err", err)
		if ln != nil {
			ln.Close()
		}
	}
}

// failure is why the server stopped itself, or nil.
func (s *Server) failure() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return s.failErr
}

func newStateLost() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plasma_stream_state_blocks_lost_total",
		Help: "State streaming blocks a streamer could not write or publish (stop-node-on-error = false), by streamer.",
	}, []string{"streamer"})
}

// stateView is the dashboard's state streaming section.
type stateView struct {
	NextBlock     uint64 `json:"next_block"`
	NATS          string `json:"nats,omitempty"` // connected, or why not
	Healthy       bool   `json:"healthy"`
	Problem       string `json:"problem,omitempty"`
	LastLost      string `json:"last_lost,omitempty"` // the streamer that last lost a block, and when
	LastLostSince string `json:"last_lost_ago,omitempty"`
	// Lag is each streamer's backlog: blocks committed and not yet
	// delivered to its destination.
	Lag map[string]streaming.Backlog `json:"lag,omitempty"`
}

func (ss *stateStream) view() stateView {
	v := stateView{NextBlock: ss.c.Next(), Healthy: true}
	if ss.nats != nil {
		v.NATS = "connected to " + ss.nats.ClientURL()
		if !ss.nats.NC.IsConnected() {
			v.NATS = "disconnected from " + ss.nats.ClientURL()
		}
	}
	if err := ss.health(); err != nil {
		v.Healthy, v.Problem = false, err.Error()
	}
	if l := ss.lost.Load(); l != nil {
		v.LastLost, v.LastLostSince = l.service, time.Since(l.at).Round(time.Second).String()
	}
	for _, svc := range ss.services {
		if b, ok := svc.(streaming.Backlogged); ok {
			if v.Lag == nil {
				v.Lag = map[string]streaming.Backlog{}
			}
			name, lag := b.Backlog()
			v.Lag[name] = lag
		}
	}
	return v
}
