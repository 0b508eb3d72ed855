package transfer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/plasmastream/plasmastream/internal/b3"
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
	// Inflight serves RELAY requests from objects still arriving here;
	// RelayWait is how long a RELAY waits for such a transfer to begin.
	Inflight  *Inflight
	RelayWait time.Duration
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
	if status, msg := streamwire.ValidateIDs(ids, nil); status != streamwire.StatusOK {
		return c.Send(streamwire.TypeCopyBegin, streamwire.ErrorReply{Status: status, Message: msg}.Append(nil))
	}
	oids := make([]store.ObjectID, len(ids))
	for i, id := range ids {
		oids[i] = id
	}
	objs, err := st.Get(ctx, oids, opt.GetTimeout, store.Internal()) // serving a copy is not a use
	if err != nil {
		msg := fmt.Sprintf("the store of the source could not be read: %v", err)
		return errors.Join(err, c.Send(streamwire.TypeCopyBegin, streamwire.ErrorReply{Status: streamwire.StatusPeerStoreError, Message: msg}.Append(nil)))
	}
	var held []store.ObjectID
	for _, o := range objs {
		if o != nil {
			held = append(held, o.ID)
		}
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
				continue
			}
			held = append(held, o.ID) // released with the others
		}
		if sentOK[i], err = sendObject(ctx, c, st, uint32(i), ids[i], o, opt.Stats); err != nil {
			c.Close()
			<-acks
			return fmt.Errorf("send object %x: %w", ids[i][:], err)
		}
	}
	if err := c.Send(streamwire.TypeCopyEnd, nil); err != nil {
		c.Close()
		<-acks
		return err
	}
	sent.Store(true)
	c.NC.SetReadDeadline(time.Now().Add(c.Timeout))
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
	return c.Send(streamwire.TypeDeleted, deleteTaken(st, oids, objs, ack.ok, &held, opt.Stats).Append(nil))
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
	var digest [32]byte
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
		if outboard == nil && !o.HasDigest {
			digest = b3.Sum(o.Data)
		}
		h.OutboardSize = uint32(len(outboard))
	}
	if err := c.WriteFrame(streamwire.TypeObjectHeader, h.Append(nil)); err != nil || h.Status != streamwire.StatusOK {
		return false, err
	}
	metaDigest := b3.Sum(o.Metadata)
	for _, b := range [][]byte{o.Metadata, digest[:], metaDigest[:], outboard} {
		if _, err := c.W.Write(b); err != nil {
			return false, err
		}
	}
	if len(o.Data) >= sendfileMin {
		if err := c.Flush(); err != nil {
			return false, err
		}
		if err := sendFile(c, st.ArenaFile(), int64(o.Offset), int64(len(o.Data))); err != nil {
			return false, err
		}
	} else if _, err := c.W.Write(o.Data); err != nil {
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
		t, p, err := c.readFrame(deadline, func(streamwire.Type) uint32 { return streamwire.MaxControlFrame })
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
// transfer bringing it, as its bytes arrive, if one starts within
// RelayWait; otherwise it is looked up in the store again (it may have
// been sealed meanwhile). It returns the stored object to send normally,
// or nil once the object was relayed (err reports a relay that broke: the
// connection must then be closed, so the receiver never seals it).
func relayOrGet(ctx context.Context, c *Conn, st *store.Client, index uint32, id streamwire.ID, opt SendOptions) (o *store.Object, relayed bool, err error) {
	if a := opt.Inflight.wait(ctx, st, id, opt.RelayWait); a != nil {
		defer opt.Inflight.leave(a)
		return nil, true, sendArriving(ctx, c, index, id, a, opt)
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

// sendArriving forwards an object while it arrives: header, metadata,
// digest and outboard at once, then the data as it lands — for an object
// with an outboard, only the groups verified here.
func sendArriving(ctx context.Context, c *Conn, index uint32, id streamwire.ID, a *arriving, opt SendOptions) error {
	h := streamwire.ObjectHeader{Index: index, ID: id, Status: streamwire.StatusOK, DataSize: uint64(len(a.buf)),
		MetaSize: uint32(len(a.meta)), OutboardSize: uint32(len(a.outboard))}
	if err := c.WriteFrame(streamwire.TypeObjectHeader, h.Append(nil)); err != nil {
		return err
	}
	metaDigest := b3.Sum(a.meta)
	for _, b := range [][]byte{a.meta, a.digest[:], metaDigest[:], a.outboard} {
		if _, err := c.W.Write(b); err != nil {
			return err
		}
	}
	for sent := 0; ; {
		received, done, ok := opt.Inflight.next(ctx, a, sent)
		for sent < received {
			n := min(received-sent, stepSize)
			c.NC.SetWriteDeadline(time.Now().Add(c.Timeout))
			if _, err := c.W.Write(a.buf[sent : sent+n]); err != nil {
				return err
			}
			sent += n
		}
		if err := c.Flush(); err != nil {
			return err
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case done && !ok:
			return fmt.Errorf("the transfer bringing it here failed")
		case done && sent == len(a.buf):
			opt.Stats.BytesSent.Add(uint64(len(a.buf) + len(a.meta)))
			opt.Stats.ObjectsSent.Add(1)
			return nil
		}
	}
}
