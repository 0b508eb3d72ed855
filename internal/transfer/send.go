package transfer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/store"
)

// Stats counts what moved; plasma-stream-server exports it as metrics.
type Stats struct {
	BytesSent, ObjectsSent           atomic.Uint64
	BytesReceived, ObjectsReceived   atomic.Uint64
	IntegrityFailures, DeletedOnTake atomic.Uint64
	// Verified streaming (RANGE fetches): data bytes that arrived and
	// verified against their outboard, bytes asked for again after a
	// broken or corrupt transfer, and groups rejected as corrupt.
	BytesVerified, BytesRerequested, CorruptGroups atomic.Uint64
}

// SendOptions tune the sending side.
type SendOptions struct {
	// GetTimeout is how long to wait for a requested object that is still
	// being created (plasma-stream-server's --plasma-timeout).
	GetTimeout time.Duration
	Stats      *Stats
	// Partials serves RELAY requests from objects still arriving here;
	// RelayWait is how long a RELAY waits for such a transfer to begin.
	Partials  *Partials
	RelayWait time.Duration
	// Expect, if set, is told the size of the objects found in the store
	// (data and metadata) before they are sent, and Progress the bytes and
	// objects as each is sent.
	Expect   func(bytes int64)
	Progress func(bytes int64, objects int)
}

// sendfileMin is the data size from which the sender hands bytes to the
// kernel with sendfile instead of copying them through the write buffer.
const sendfileMin = 256 << 10

// Send answers a COPY or TAKE whose ids were just read from c: it checks
// the limits, streams every object from the store, collects the
// receiver's acknowledgements and, for TAKE, deletes what the receiver
// sealed. Objects stay referenced (so their memory cannot be reused under
// an in-flight sendfile) until the receiver has acknowledged them.
func Send(ctx context.Context, c *Conn, st *store.Client, kind streamwire.Kind, ids []streamwire.ID, opt SendOptions) error {
	if opt.Stats == nil {
		opt.Stats = &Stats{}
	}
	if opt.Progress == nil {
		opt.Progress = func(int64, int) {}
	}
	if status, msg := streamwire.ValidateIDs(ids, nil); status != streamwire.StatusOK {
		return c.Send(streamwire.TypeCopyBegin, streamwire.ErrorReply{Status: status, Message: msg}.Append(nil))
	}
	objs, err := st.Get(ctx, ids, opt.GetTimeout, store.Internal()) // serving a copy is not a use
	if err != nil {
		msg := fmt.Sprintf("the store of the source could not be read: %v", err)
		return errors.Join(err, c.Send(streamwire.TypeCopyBegin, streamwire.ErrorReply{Status: streamwire.StatusPeerStoreError, Message: msg}.Append(nil)))
	}
	var held []store.ObjectID
	var size int64
	for _, o := range objs {
		if o != nil {
			held = append(held, o.ID)
			size += int64(len(o.Data) + len(o.Metadata))
		}
	}
	if opt.Expect != nil {
		opt.Expect(size)
	}
	defer func() {
		if len(held) > 0 {
			st.Release(context.Background(), held...)
		}
	}()
	stop := c.CloseOnDone(ctx)
	defer stop()

	acks := make(chan ackResult, 1)
	var sent atomic.Bool
	go func() { acks <- readAcks(c, len(ids), &sent) }()
	if err := c.WriteFrame(streamwire.TypeCopyBegin, streamwire.ErrorReply{Status: streamwire.StatusOK}.Append(nil)); err != nil {
		return err
	}
	sentOK := make([]bool, len(objs)) // sent with status OK: only these may be deleted on TAKE
	for i, o := range objs {
		var err error
		if o == nil && kind == streamwire.KindRelay {
			var relayed bool
			if o, relayed, err = relayOrGet(ctx, c, st, uint32(i), ids[i], opt); o == nil {
				if err != nil {
					c.Close()
					<-acks
					return fmt.Errorf("relay object %x: %w", ids[i][:], err)
				}
				sentOK[i] = relayed
				opt.Progress(0, 1)
				continue
			}
			held = append(held, o.ID) // released with the others
		}
		if sentOK[i], err = sendObject(ctx, c, st, uint32(i), ids[i], o, opt.Stats); err != nil {
			c.Close()
			<-acks
			return fmt.Errorf("send object %x: %w", ids[i][:], err)
		}
		if o != nil && sentOK[i] {
			opt.Progress(int64(len(o.Data)+len(o.Metadata)), 1)
		} else {
			opt.Progress(0, 1)
		}
	}
	if err := c.Send(streamwire.TypeCopyEnd, nil); err != nil {
		c.Close()
		<-acks
		return err
	}
	sent.Store(true)
	c.BoundPendingRead()
	ack := <-acks
	if ack.err != nil {
		return fmt.Errorf("acknowledgements: %w", ack.err)
	}
	if kind != streamwire.KindTake {
		return nil
	}
	for i := range ack.ok {
		ack.ok[i] = ack.ok[i] && sentOK[i]
	}
	return c.Send(streamwire.TypeDeleted, deleteTaken(st, ids, objs, ack.ok, &held, opt.Stats).Append(nil))
}

// sendData writes o.Data[off:off+n]: large runs with sendfile straight
// from the store's arena, small ones through the write buffer.
func sendData(c *Conn, st *store.Client, o *store.Object, off, n uint64) error {
	if n < sendfileMin {
		return c.Write(o.Data[off : off+n])
	}
	if err := c.Flush(); err != nil {
		return err
	}
	return c.SendFile(st.ArenaFile(), int64(o.Offset+off), o.Data[off:off+n])
}

// sendObject writes one object's header and, when it can be sent, its
// metadata, digest, outboard (objects over 1 MiB, so that the receiver
// verifies each 16 KiB group as it lands) and data; sent says whether it
// was.
func sendObject(ctx context.Context, c *Conn, st *store.Client, index uint32, id streamwire.ID, o *store.Object, stats *Stats) (sent bool, err error) {
	h := streamwire.ObjectHeader{Index: index, ID: id, Status: streamwire.StatusOK}
	switch {
	case o == nil:
		h.Status = streamwire.StatusNotFound
	case len(o.Metadata) > streamwire.MaxMetadataSize:
		h.Status = streamwire.StatusMetadataTooLarge
	case uint64(len(o.Data)) > streamwire.MaxDataSize:
		h.Status = streamwire.StatusDataTooLarge
	default:
		h.DataSize, h.MetaSize = uint64(len(o.Data)), uint32(len(o.Metadata))
	}
	var digest store.Digest
	var outboard []byte
	if h.Status == streamwire.StatusOK {
		digest = o.Digest
		if len(o.Data) > smallMax {
			// Built once by the store; beyond 16 GiB there is none and
			// the receiver verifies the whole object.
			if d, ob, err := st.Outboard(ctx, id); err == nil {
				digest, outboard = d, ob
			}
		}
		if outboard == nil && o.Digest.IsZero() {
			digest = bao.Sum(o.Data)
		}
		h.OutboardSize = uint32(len(outboard))
	}
	if err := c.WriteFrame(streamwire.TypeObjectHeader, h.Append(nil)); err != nil || h.Status != streamwire.StatusOK {
		return false, err
	}
	metaDigest := bao.Sum(o.Metadata)
	if len(o.Data) < sendfileMin { // all through the buffer
		if err := c.Write(o.Metadata, digest[:], metaDigest[:], outboard, o.Data); err != nil {
			return false, err
		}
	} else if err := c.Write(o.Metadata, digest[:], metaDigest[:], outboard); err != nil {
		return false, err
	} else if err := sendData(c, st, o, 0, uint64(len(o.Data))); err != nil {
		return false, err
	}
	stats.BytesSent.Add(uint64(len(o.Data) + len(o.Metadata)))
	stats.ObjectsSent.Add(1)
	return true, nil
}

type ackResult struct {
	ok  []bool // per index: the receiver sealed it
	err error
}

// readAcks collects the receiver's Ack frames until AckEnd. While the
// sender is still sending, a dead receiver shows up as a failed write, so
// acks are awaited without a deadline; once everything is sent (sent is
// set) each read has the usual one.
func readAcks(c *Conn, n int, sent *atomic.Bool) ackResult {
	res := ackResult{ok: make([]bool, n)}
	for {
		deadline := time.Time{}
		if sent.Load() {
			deadline = time.Now().Add(c.Timeout)
		}
		t, p, err := c.readFrame(deadline, streamwire.MaxControlFrame)
		if err != nil {
			res.err = err
			return res
		}
		switch t {
		case streamwire.TypeAck:
			var a streamwire.Ack
			if err := a.Decode(p); err != nil || int(a.Index) >= n {
				res.err = &ProtocolError{Msg: fmt.Sprintf("bad ACK (%v)", err)}
				return res
			}
			res.ok[a.Index] = a.Status.Success()
		case streamwire.TypeAckEnd:
			return res
		default:
			res.err = &ProtocolError{Msg: fmt.Sprintf("got %s while waiting for ACKs", t)}
			return res
		}
	}
}

// deleteTaken deletes, for a TAKE, the objects the receiver sealed, after
// dropping our references so that the delete is immediate where nobody
// else uses them. It returns the indexes the store deleted.
func deleteTaken(st *store.Client, oids []store.ObjectID, objs []*store.Object, acked []bool, held *[]store.ObjectID, stats *Stats) streamwire.Deleted {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var del []store.ObjectID
	var idx []uint32
	for i, o := range objs {
		if o != nil && acked[i] {
			del = append(del, oids[i])
			idx = append(idx, uint32(i))
		}
	}
	var out streamwire.Deleted
	if len(del) == 0 {
		return out
	}
	st.Release(ctx, *held...)
	*held = nil
	errs, err := st.Delete(ctx, del...)
	if err != nil {
		return out // best effort, as the protocol says: the objects stay
	}
	for i, e := range errs {
		if e == nil {
			out.Indexes = append(out.Indexes, idx[i])
			stats.DeletedOnTake.Add(1)
		}
	}
	return out
}

// relayOrGet serves a RELAY'd object that is not sealed here: from the
// transfer bringing it, as its bytes arrive and verify, if one is under
// way within RelayWait; otherwise it is looked up in the store again (it
// may have been sealed meanwhile). It returns the stored object to send
// normally, or nil once the object was relayed (err reports a relay that
// broke: the connection must then be closed, so the receiver never seals
// it).
func relayOrGet(ctx context.Context, c *Conn, st *store.Client, index uint32, id streamwire.ID, opt SendOptions) (o *store.Object, relayed bool, err error) {
	deadline := time.Now().Add(opt.RelayWait)
	if ps := opt.Partials; ps != nil {
		if p := ps.openRelay(ctx, st, id, time.Until(deadline)); p != nil {
			defer ps.Done(p)
			return nil, true, sendArriving(ctx, c, index, ps, p, opt.Stats)
		}
	}
	objs, err := st.Get(ctx, []store.ObjectID{id}, 0, store.Internal())
	if err != nil {
		return nil, false, err
	}
	if objs[0] == nil {
		// Not here: tell the receiver, as for a COPY.
		return nil, false, c.WriteFrame(streamwire.TypeObjectHeader, streamwire.ObjectHeader{Index: index, ID: id, Status: streamwire.StatusNotFound}.Append(nil))
	}
	return objs[0], false, nil
}

// sendArriving forwards object p while it arrives: header, metadata,
// digest and outboard at once, then the data as its groups verify here
// (an object without an outboard: as they land).
func sendArriving(ctx context.Context, c *Conn, index uint32, ps *Partials, p *Partial, stats *Stats) error {
	var outboard []byte
	if p.Tree != nil {
		outboard = p.Tree.Outboard()
	}
	h := streamwire.ObjectHeader{Index: index, ID: p.ID, Status: streamwire.StatusOK, DataSize: uint64(len(p.Buf)),
		MetaSize: uint32(len(p.Meta)), OutboardSize: uint32(len(outboard))}
	if err := c.WriteFrame(streamwire.TypeObjectHeader, h.Append(nil)); err != nil {
		return err
	}
	metaDigest := bao.Sum(p.Meta)
	if err := c.Write(p.Meta, p.Digest[:], metaDigest[:], outboard); err != nil {
		return err
	}
	for sent := 0; ; {
		prefix, sealed, failed := ps.next(ctx, p, sent)
		if err := c.Write(p.Buf[sent:prefix]); err != nil {
			return err
		}
		sent = prefix
		if err := c.Flush(); err != nil {
			return err
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case failed:
			return fmt.Errorf("the transfer bringing it here failed")
		case sealed && sent == len(p.Buf):
			stats.BytesSent.Add(uint64(len(p.Buf) + len(p.Meta)))
			stats.ObjectsSent.Add(1)
			return nil
		}
	}
}
