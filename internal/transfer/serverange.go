package transfer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/store"
)

// RangeOptions tune the serving side of RANGE.
type RangeOptions struct {
	Stats    *Stats
	Partials *Partials
	// Wait is how long a RANGE with its Wait flag for an object this node
	// neither holds nor receives waits for a fetch of it to begin (members
	// of a PULL start at about the same time), and how long any RANGE
	// waits for the next group of an object still arriving.
	Wait time.Duration
}

// ServeRange answers one RANGE: from the sealed object in st (data sent
// with sendfile from the arena), or else from an object this node is
// still receiving, each group as soon as it is verified. A nil error
// leaves the connection ready for the next request.
func ServeRange(ctx context.Context, c *Conn, st *store.Client, m *streamwire.Range, opt RangeOptions) error {
	if opt.Stats == nil {
		opt.Stats = &Stats{}
	}
	fail := func(status streamwire.Status, format string, args ...any) error {
		return c.Send(streamwire.TypeRange|streamwire.ReplyBit, streamwire.RangeReply{Status: status, Message: fmt.Sprintf(format, args...)}.Append(nil))
	}
	if m.Offset%bao.GroupSize != 0 {
		return fail(streamwire.StatusMalformed, "range of object %x: offset %d is not a multiple of the %d-byte group", m.ID[:], m.Offset, bao.GroupSize)
	}
	o, err := st.GetOne(ctx, m.ID, 0, store.Internal()) // serving a range is not a use
	if err != nil && !errors.Is(err, store.ErrObjectNotFound) {
		return fail(streamwire.StatusPeerStoreError, "range of object %x: the store of the source failed: %v", m.ID[:], err)
	}
	if o != nil {
		defer st.Release(context.Background(), o.ID)
		return serveSealed(ctx, c, st, m, o, opt, fail)
	}
	var wait time.Duration
	if m.Wait {
		wait = opt.Wait
	}
	p := opt.Partials.Open(ctx, m.ID, wait)
	if p == nil {
		return fail(streamwire.StatusNotFound, "object %x is not on this node", m.ID[:])
	}
	defer opt.Partials.Done(p)
	return servePartial(ctx, c, m, p, opt, fail)
}

// checkRange validates the requested window against the object's size.
func checkRange(m *streamwire.Range, size uint64) (string, bool) {
	end := m.Offset + m.Length
	switch {
	case end < m.Offset || end > size:
		return fmt.Sprintf("range [%d, %d) of object %x is beyond its %d bytes", m.Offset, end, m.ID[:], size), false
	case m.Length%bao.GroupSize != 0 && end != size:
		return fmt.Sprintf("range [%d, %d) of object %x does not end at a group boundary", m.Offset, end, m.ID[:]), false
	}
	return "", true
}

func serveSealed(ctx context.Context, c *Conn, st *store.Client, m *streamwire.Range, o *store.Object, opt RangeOptions, fail func(streamwire.Status, string, ...any) error) error {
	size := uint64(len(o.Data))
	if msg, ok := checkRange(m, size); !ok {
		return fail(streamwire.StatusMalformed, "%s", msg)
	}
	r := streamwire.RangeReply{Status: streamwire.StatusOK, Length: m.Length, Header: m.Header}
	if m.Header {
		digest, outboard, err := st.Outboard(ctx, o.ID)
		if err != nil {
			return fail(streamwire.StatusPeerStoreError, "range of object %x: no outboard: %v", m.ID[:], err)
		}
		r.DataSize, r.Digest, r.Metadata, r.MetaDigest, r.Outboard = size, digest, o.Metadata, bao.Sum(o.Metadata), outboard
	}
	if err := c.WriteFrame(streamwire.TypeRange|streamwire.ReplyBit, r.Append(nil)); err != nil {
		return err
	}
	if err := sendData(c, st, o, m.Offset, m.Length); err != nil {
		return err
	}
	opt.Stats.BytesSent.Add(m.Length)
	return c.Flush()
}

// servePartial streams the groups of an object still arriving, each once
// it is verified here. If the object's own fetch fails, the connection is
// dropped: the requester takes the rest elsewhere.
func servePartial(ctx context.Context, c *Conn, m *streamwire.Range, p *Partial, opt RangeOptions, fail func(streamwire.Status, string, ...any) error) error {
	t := p.Tree
	if msg, ok := checkRange(m, t.Size()); !ok {
		return fail(streamwire.StatusMalformed, "%s", msg)
	}
	r := streamwire.RangeReply{Status: streamwire.StatusOK, Length: m.Length, Header: m.Header}
	if m.Header {
		r.DataSize, r.Digest, r.Metadata, r.MetaDigest, r.Outboard = t.Size(), t.Root(), p.Meta, bao.Sum(p.Meta), t.Outboard()
	}
	if err := c.Send(streamwire.TypeRange|streamwire.ReplyBit, r.Append(nil)); err != nil {
		return err
	}
	const batch = 64 // groups written at once: 1 MiB
	end := m.Offset + m.Length
	for off := m.Offset; off < end; {
		first := int(off / bao.GroupSize)
		last := min(first+batch, t.Groups()) - 1
		n := min(uint64(last-first+1)*bao.GroupSize, end-off)
		last = int((off + n - 1) / bao.GroupSize)
		if !opt.Partials.WaitGroups(ctx, p, first, last, opt.Wait) {
			c.Close()
			return fmt.Errorf("object %x: groups %d-%d did not arrive here (its own fetch stopped or stalled)", m.ID[:], first, last)
		}
		if err := c.WriteDirect(p.Buf[off : off+n]); err != nil {
			return err
		}
		opt.Stats.BytesSent.Add(n)
		off += n
	}
	return nil
}
