package streamserver

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/stream"
)

// PullOutcome is the JSON reply to PULL.
type PullOutcome = stream.PullOutcome

// fetchFrom makes object id local with a verified multi-source fetch from
// sources (see transfer.Fetch). Concurrent fetches of one object here
// share one transfer. A successful result is referenced in held (see
// transfer.Held), which belongs to sc: a caller that shared another's
// transfer takes its own reference, and fetches again in the unlikely case
// that the object was evicted before it could.
func (s *Server) fetchFrom(ctx context.Context, sc *storeConn, id streamwire.ID, sources []streamwire.PullSource, digest *[32]byte, own, slices int, held *transfer.Held) transfer.FetchResult {
	for attempt := 0; ; attempt++ {
		ran := false // this caller's function ran: its Fetch holds the object in held
		v, _, _ := s.fetches.Do(string(id[:]), func() (any, error) {
			ran = true
			return s.fetchOnce(ctx, sc, id, sources, digest, own, slices, held), nil
		})
		res := v.(transfer.FetchResult)
		if ran || !res.Status.Success() {
			return res
		}
		ok, err := transfer.Hold(ctx, sc.st, held, id)
		switch {
		case ok:
			return res
		case err != nil:
			res.Status, res.Message = streamwire.StatusStoreError, fmt.Sprintf("object %x: the local store: %v", id[:], err)
			return res
		case attempt > 0:
			res.Status, res.Message = streamwire.StatusStoreFull, fmt.Sprintf("object %x was evicted from the local store as soon as it arrived, twice; free space in the store", id[:])
			return res
		}
	}
}

// fetchOnce runs one transfer.Fetch for fetchFrom.
func (s *Server) fetchOnce(ctx context.Context, sc *storeConn, id streamwire.ID, sources []streamwire.PullSource, digest *[32]byte, own, slices int, held *transfer.Held) transfer.FetchResult {
	start := time.Now()
	res := transfer.Fetch(ctx, sc.st, id, sources, transfer.FetchOptions{
		Stats: &s.stats, Partials: sc.partials, Digest: digest, Own: own, Slices: slices, Held: held,
		Dial: func(ctx context.Context, addr string) (*transfer.Conn, error) {
			c, _, err := transfer.Dial(ctx, addr, streamwire.RolePeer, s.cfg.NodeName, s.cfg.IOTimeout)
			return c, err
		},
	})
	s.metrics.duration.WithLabelValues("fetch").Observe(time.Since(start).Seconds())
	for _, src := range res.Sources {
		if src.Failed != "" {
			s.log.Warn("fetch: source failed", "object", hex.EncodeToString(id[:]), "node", src.Node, "address", src.Address, "err", src.Failed)
		}
	}
	return res
}

// pull answers PULL: fetch the object from the given sources, slice by
// slice, and report what each source contributed.
func (s *Server) pull(ctx context.Context, c *transfer.Conn, m *streamwire.Pull) (streamwire.Status, error) {
	for _, src := range m.Sources {
		if st, msg := streamwire.ValidateAddr(src.Addr); st != streamwire.StatusOK {
			return st, c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: st, Message: "PULL rejected: " + msg}.Append(nil))
		}
	}
	start := time.Now()
	sc, err := s.useStore()
	if err != nil {
		return sendErr(c, streamwire.TypeError, err)
	}
	defer sc.release()
	held := transfer.NewHeld(sc.st) // the object stays here until the reply is sent
	defer held.Release()
	res := s.fetchFrom(ctx, sc, m.ID, m.Sources, nil, int(m.Own), int(m.Slices), held)
	out := PullOutcome{Node: s.cfg.NodeName, Status: res.Status.String(), Code: uint16(res.Status), OK: res.Status.Success(), Message: res.Message,
		Bytes: res.Bytes, Resumed: res.Resumed, Duration: time.Since(start)}
	for _, src := range res.Sources {
		out.Sources = append(out.Sources, stream.SourceStat(src))
	}
	b, err := json.Marshal(out)
	if err != nil {
		return streamwire.StatusInternal, err
	}
	return res.Status, c.Send(streamwire.TypePull|streamwire.ReplyBit, streamwire.JSON{Body: b}.Append(nil))
}

// pullAll is the first phase of a prefetch: every target at once pulls
// the object as slices, its own slice from the holders and each other
// slice from the target that owns it, which forwards every group as soon
// as it has verified it. The holders send the object about once in all,
// and each target's link carries it about once each way.
func (s *Server) pullAll(ctx context.Context, id streamwire.ID, holders []streamwire.PullSource, targets []streamwire.PullSource) []NodeOutcome {
	out := make([]NodeOutcome, len(targets))
	done := make(chan struct{}, len(targets))
	for k, t := range targets {
		sources := append([]streamwire.PullSource(nil), holders...)
		for j, o := range targets {
			if j != k {
				sources = append(sources, streamwire.PullSource{Node: o.Node, Addr: o.Addr})
			}
		}
		go func() {
			defer func() { done <- struct{}{} }()
			start := time.Now()
			o := NodeOutcome{Node: t.Node, Address: t.Addr, Source: "pull"}
			c, err := stream.Connect(ctx, t.Addr, stream.WithName(s.cfg.NodeName+"/prefetch"), stream.WithTimeout(s.cfg.IOTimeout))
			var po PullOutcome
			if err == nil {
				po, err = c.Pull(ctx, id, sources, k, len(targets))
				c.Close()
			}
			o.Duration = time.Since(start)
			switch {
			case err != nil:
				o.Status, o.Message = streamwire.StatusPeerUnreachable.String(), fmt.Sprintf("node %s: %v", t.Node, err)
			case !po.OK:
				o.Status, o.Message = po.Status, po.Message
			default:
				o.Status, o.OK = po.Status, true
			}
			out[k] = o
		}()
	}
	for range targets {
		<-done
	}
	return out
}
