package node

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// pull answers PULL: fetch the object from the given sources, slice by
// slice, and report what each source contributed.
func (n *Node) pull(ctx context.Context, c *transfer.Conn, m *streamwire.Pull) (streamwire.Status, error) {
	for _, src := range m.Sources {
		if st, msg := streamwire.ValidateAddr(src.Addr); st != streamwire.StatusOK {
			return replyError(c, st, "PULL rejected: "+msg)
		}
	}
	start := time.Now()
	sc, err := n.useStore()
	if err != nil {
		return storeFailed(c, err)
	}
	defer sc.Release()
	held := transfer.NewHeld(sc.Client) // the object stays here until the reply is sent
	defer held.Release()
	res := n.fetchFrom(ctx, sc, m.ID, m.Sources, wire.Digest{}, int(m.Own), int(m.Slices), held)
	if n.cfg.Received != nil {
		addrs := make([]string, len(m.Sources))
		for i, src := range m.Sources {
			addrs[i] = src.Addr
		}
		n.cfg.Received("PULL", streamwire.PeerResult{Kind: streamwire.KindCopy, Addr: strings.Join(addrs, ","), Status: res.Status,
			Message: res.Message, Bytes: res.Bytes, DurationNs: int64(time.Since(start)),
			Objects: []streamwire.ObjectResult{{ID: m.ID, Status: res.Status, Bytes: res.Bytes, Message: res.Message}}})
	}
	out := streamwire.PullOutcome{Node: n.cfg.Name, Status: res.Status.String(), Code: uint16(res.Status), OK: res.Status.Success(), Message: res.Message,
		Bytes: res.Bytes, Resumed: res.Resumed, Sources: res.Sources, Duration: time.Since(start)}
	st, err := replyJSON(c, streamwire.TypePull, out)
	if err != nil {
		return st, err
	}
	return res.Status, nil
}

// pullAll is the first phase of a prefetch: every target at once pulls
// the object as slices, its own slice from the holders and each other
// slice from the target that owns it, which forwards every group as soon
// as it has verified it. The holders send the object about once in all,
// and each target's link carries it about once each way.
func (n *Node) pullAll(ctx context.Context, id streamwire.ID, holders []streamwire.PullSource, targets []streamwire.PullSource) []streamwire.NodeOutcome {
	out := make([]streamwire.NodeOutcome, len(targets))
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
			o := streamwire.NodeOutcome{Node: t.Node, Address: t.Addr, Source: "pull"}
			po, err := n.pullOn(ctx, t.Addr, id, sources, k, len(targets))
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
