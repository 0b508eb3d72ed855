package streamserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/plasmastream/plasmastream/internal/activity"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/tracing"
	"github.com/plasmastream/plasmastream/internal/transfer"
)

// progress is shared by the peer requests of one SYNC.
type progress struct {
	bytes, objects atomic.Uint64
	announced      atomic.Uint64 // bytes of the objects whose headers arrived
	objectsTotal   uint32
}

func (p *progress) add(b int64, o int) {
	p.bytes.Add(uint64(b))
	p.objects.Add(uint64(o))
}

func (p *progress) frame() []byte {
	return streamwire.Progress{BytesDone: p.bytes.Load(), BytesTotal: p.announced.Load(), ObjectsDone: uint32(p.objects.Load()), ObjectsTotal: p.objectsTotal}.Append(nil)
}

// progressInterval is how often a SYNC client hears how far it got.
const progressInterval = 250 * time.Millisecond

// sync runs a client's SYNC: every limit is checked before anything moves;
// then the peer requests run concurrently (at most SyncConcurrency at
// once), progress frames flow to the client, and the reply is one
// PeerResult per peer request, in order, and a SyncDone.
func (s *Server) sync(ctx context.Context, c *transfer.Conn, sc *storeConn, m *streamwire.Sync) (streamwire.Status, error) {
	if st, msg := m.Validate(); st != streamwire.StatusOK {
		return st, c.Send(streamwire.TypeSyncResult, streamwire.SyncDone{Status: st, Message: "SYNC rejected: " + msg}.Append(nil))
	}
	start := time.Now()
	// The objects the SYNC reports in the store stay referenced until its
	// reply is sent, so that its peer requests never evict each other's.
	held := transfer.NewHeld(sc.st)
	defer held.Release()
	prog := &progress{}
	for _, pr := range m.Peers {
		prog.objectsTotal += uint32(len(pr.IDs))
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWatch := watchHangup(c, cancel)

	var wmu sync.Mutex
	tickDone := make(chan struct{})
	var ticking sync.WaitGroup
	ticking.Add(1)
	go func() {
		defer ticking.Done()
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-tickDone:
				return
			case <-t.C:
				wmu.Lock()
				if c.Send(streamwire.TypeProgress, prog.frame()) != nil {
					cancel()
				}
				wmu.Unlock()
			}
		}
	}()

	results := make([]streamwire.PeerResult, len(m.Peers))
	var peers errgroup.Group
	peers.SetLimit(s.cfg.SyncConcurrency)
	for i, pr := range m.Peers {
		peers.Go(func() error {
			results[i] = s.runPeer(sctx, sc, pr, prog, held)
			return nil
		})
	}
	peers.Wait()
	close(tickDone)
	ticking.Wait() // no PROGRESS may follow the results
	if err := stopWatch(); err != nil {
		return streamwire.StatusCancelled, err
	}

	wmu.Lock()
	defer wmu.Unlock()
	done := streamwire.SyncDone{Status: streamwire.StatusOK, DurationNs: int64(time.Since(start))}
	var failedPeers, failedObjects int
	for _, r := range results {
		if err := c.WriteFrame(streamwire.TypePeerResult, r.Append(nil)); err != nil {
			return streamwire.StatusConnectionLost, err
		}
		done.Bytes += r.Bytes
		for _, o := range r.Objects {
			if o.Status.Success() {
				done.Objects++
			} else {
				failedObjects++
			}
		}
		if r.Status != streamwire.StatusOK {
			failedPeers++
			if done.Status == streamwire.StatusOK {
				done.Status = r.Status
			}
		}
	}
	if failedPeers > 0 {
		done.Message = fmt.Sprintf("%d of %d %s failed (%d %s)", failedPeers, len(results), plural(len(results), "peer request"),
			failedObjects, plural(failedObjects, "object"))
	}
	return done.Status, c.Send(streamwire.TypeSyncResult, done.Append(nil))
}

// watchHangup cancels a running SYNC when its client goes away: it waits
// for a byte (consuming nothing) on the client connection, which a
// well-behaved client never sends during a SYNC. stop ends the watch and
// reports whether the client hung up.
func watchHangup(c *transfer.Conn, cancel func()) (stop func() error) {
	gone := make(chan error, 1)
	go func() {
		err := c.PeekIdle()
		gone <- err
		if err != nil && !isTimeout(err) {
			cancel()
		}
	}()
	return func() error {
		c.Interrupt()
		err := <-gone
		if err != nil && !isTimeout(err) {
			return fmt.Errorf("client %s went away during SYNC: %w", c.Peer, err)
		}
		return nil
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// runPeer executes one peer request into the local store.
// The references to what it reports in the store go to held.
func (s *Server) runPeer(ctx context.Context, sc *storeConn, pr streamwire.PeerRequest, prog *progress, held *transfer.Held) streamwire.PeerResult {
	start := time.Now()
	defer func() { s.metrics.duration.WithLabelValues("receive").Observe(time.Since(start).Seconds()) }()
	ctx, span := tracing.Start(ctx, "plasma.peer."+strings.ToLower(pr.Kind.String()), trace.SpanKindClient,
		attribute.String("plasma.peer", pr.Addr), attribute.Int("plasma.objects", len(pr.IDs)))
	var res streamwire.PeerResult
	defer func() {
		span.SetAttributes(attribute.Int64("plasma.bytes", int64(res.Bytes)))
		tracing.End(span, res.Status.String(), nil)
	}()
	dial := func() (*transfer.Conn, error) {
		// With keys the caller learns only that no trusted node answered
		// there; the reason (refused, not TLS, another key) is logged.
		c, err := transfer.DialNode(ctx, pr.Addr, streamwire.RolePeer, s.cfg.NodeName, s.cfg.IOTimeout, s.peerTLS, s.log.With("component", "conn"))
		return c, err // Summarize names the peer
	}
	t := s.activity.Begin(activity.In, "sync "+pr.Kind.String(), pr.Addr, len(pr.IDs))
	progress := func(b int64, o int) {
		prog.add(b, o)
		t.Add(b, o)
	}
	expect := func(n int64) {
		prog.announced.Add(uint64(n))
		t.Expect(n)
	}
	objs, err := transfer.Receive(ctx, dial, sc.st, pr.Kind, pr.IDs, transfer.ReceiveOptions{Stats: &s.stats, Progress: progress, Expect: expect,
		Partials: sc.partials, Peer: pr.Addr, Held: held})
	t.End(objs, err)
	res = transfer.Summarize(streamwire.PeerResult{Kind: pr.Kind, Addr: pr.Addr, Status: streamwire.StatusOK,
		Objects: objs, DurationNs: int64(time.Since(start))}, err)
	s.state.transferIn(res.Kind.String(), res)
	return res
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
