package transfer

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/b3"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/store"
)

// ReceiveOptions tune the receiving side.
type ReceiveOptions struct {
	Stats *Stats
	// Inflight, if set, publishes large objects while they arrive so that
	// RELAY requests can forward them cut-through.
	Inflight *Inflight
	// Progress, if set, is called as bytes arrive and objects complete.
	Progress func(bytes int64, objects int)
}

// storeWorkers bounds the small objects being stored at once.
const storeWorkers = 32

// smallMax is the largest object received into a scratch buffer and
// stored with one CreateAndSeal; larger ones are received in place.
const smallMax = 1 << 20

// Receive fetches ids into st with a COPY or TAKE over a connection dial
// opens, and returns one result per id, in order. Objects already in st
// are reported AlreadyPresent without being requested (and without
// dialling, when that is all of them). The error is the peer-level
// failure, if any (objects not finished then carry its status); per-object
// failures are in the results.
func Receive(ctx context.Context, dial func() (*Conn, error), st *store.Client, kind streamwire.Kind, ids []streamwire.ID, opt ReceiveOptions) ([]streamwire.ObjectResult, error) {
	if opt.Stats == nil {
		opt.Stats = &Stats{}
	}
	if opt.Progress == nil {
		opt.Progress = func(int64, int) {}
	}
	res := make([]streamwire.ObjectResult, len(ids))
	for i := range res {
		res[i].ID = ids[i]
	}
	want, err := missing(ctx, st, ids, res)
	if err != nil || len(want) == 0 {
		return res, err
	}
	c, err := dial()
	if err != nil {
		st := ErrStatus(err)
		for _, i := range want {
			res[i].Status, res[i].Message = st, err.Error()
		}
		return res, err
	}
	defer c.Close()
	stop := c.CloseOnDone(ctx)
	defer stop()
	r := &receiver{c: c, st: st, opt: opt, res: res, want: want, ids: ids, slots: make(chan struct{}, storeWorkers)}
	err = r.run(ctx, kind)
	r.wg.Wait()
	for _, i := range want {
		if res[i].Status == streamwire.StatusOK && !r.done[i] {
			res[i].Status, res[i].Message = streamwire.StatusProtocolError, "the peer ended the transfer without sending it"
			if err != nil {
				res[i].Status, res[i].Message = ErrStatus(err), err.Error()
			}
		}
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return res, err
}

// missing marks the ids st already holds and returns the indexes of the
// others.
func missing(ctx context.Context, st *store.Client, ids []streamwire.ID, res []streamwire.ObjectResult) ([]int, error) {
	oids := make([]store.ObjectID, len(ids))
	for i, id := range ids {
		oids[i] = id
	}
	objs, err := st.Get(ctx, oids, 0)
	if err != nil {
		for i := range res {
			res[i].Status, res[i].Message = streamwire.StatusStoreError, err.Error()
		}
		return nil, fmt.Errorf("local store: %w", err)
	}
	var want []int
	var held []store.ObjectID
	for i, o := range objs {
		if o != nil {
			res[i].Status = streamwire.StatusAlreadyPresent
			held = append(held, o.ID)
		} else {
			want = append(want, i)
		}
	}
	if len(held) > 0 {
		st.Release(ctx, held...)
	}
	return want, nil
}

type receiver struct {
	c    *Conn
	st   *store.Client
	opt  ReceiveOptions
	res  []streamwire.ObjectResult
	ids  []streamwire.ID
	want []int        // request index -> index in res
	done map[int]bool // res indexes whose header arrived

	// Small objects are stored by workers, so that many CreateAndSeal
	// requests are in flight on the store connection at once.
	wg     sync.WaitGroup
	slots  chan struct{}
	mu     sync.Mutex // guards res statuses, acks on c.W, ackErr
	ackErr error
}

func (r *receiver) run(ctx context.Context, kind streamwire.Kind) error {
	r.done = make(map[int]bool, len(r.want))
	req := streamwire.Copy{IDs: make([]streamwire.ID, len(r.want))}
	for j, i := range r.want {
		req.IDs[j] = r.ids[i]
	}
	t := map[streamwire.Kind]streamwire.Type{streamwire.KindCopy: streamwire.TypeCopy,
		streamwire.KindTake: streamwire.TypeTake, streamwire.KindRelay: streamwire.TypeRelay}[kind]
	if err := r.c.Send(t, req.Append(nil)); err != nil {
		return err
	}
	var begin streamwire.ErrorReply
	if err := r.c.Expect(streamwire.TypeCopyBegin, &begin); err != nil {
		return err
	}
	if begin.Status != streamwire.StatusOK {
		for _, i := range r.want {
			r.res[i].Status, r.res[i].Message = begin.Status, begin.Message
			r.done[i] = true
		}
		return nil
	}
	if err := r.objects(ctx); err != nil {
		return err
	}
	if err := r.c.Send(streamwire.TypeAckEnd, nil); err != nil {
		return err
	}
	if kind == streamwire.KindTake {
		var d streamwire.Deleted
		if err := r.c.Expect(streamwire.TypeDeleted, &d); err != nil {
			return err
		}
		for _, j := range d.Indexes {
			if int(j) < len(r.want) {
				r.res[r.want[j]].DeletedAtSource = true
			}
		}
	}
	return nil
}

// objects receives every ObjectHeader and its bytes until CopyEnd.
func (r *receiver) objects(ctx context.Context) error {
	for {
		t, p, err := r.c.ReadFrame(streamwire.MaxControlFrame)
		if err != nil {
			return err
		}
		switch t {
		case streamwire.TypeCopyEnd:
			r.wg.Wait()
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.ackErr
		case streamwire.TypeObjectHeader:
		default:
			return &ProtocolError{Msg: fmt.Sprintf("got %s during a COPY", t)}
		}
		var h streamwire.ObjectHeader
		if err := h.Decode(p); err != nil {
			return &ProtocolError{Msg: err.Error()}
		}
		if err := r.check(&h); err != nil {
			return err
		}
		i := r.want[h.Index]
		r.done[i] = true
		if h.Status != streamwire.StatusOK {
			r.res[i].Status = h.Status
			r.opt.Progress(0, 1)
			continue
		}
		if err := r.object(ctx, &h, i); err != nil {
			return err
		}
	}
}

// finish records what became of object i and acknowledges it to the
// sender. It may run on a store worker goroutine.
func (r *receiver) finish(h *streamwire.ObjectHeader, i int, status streamwire.Status, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res[i].Status, r.res[i].Message = status, msg
	if status == streamwire.StatusOK {
		r.res[i].Bytes = h.DataSize + uint64(h.MetaSize)
		r.opt.Stats.BytesReceived.Add(r.res[i].Bytes)
		r.opt.Stats.ObjectsReceived.Add(1)
	}
	if err := r.c.WriteFrame(streamwire.TypeAck, streamwire.Ack{Index: h.Index, Status: status}.Append(nil)); err != nil && r.ackErr == nil {
		r.ackErr = err
	}
	r.opt.Progress(int64(h.MetaSize), 1)
}

// check rejects headers a correct sender never sends.
func (r *receiver) check(h *streamwire.ObjectHeader) error {
	switch {
	case int(h.Index) >= len(r.want):
		return &ProtocolError{Msg: fmt.Sprintf("object index %d out of range", h.Index)}
	case h.ID != r.ids[r.want[h.Index]]:
		return &ProtocolError{Msg: fmt.Sprintf("object %d is %x, not the requested %x", h.Index, h.ID[:], r.ids[r.want[h.Index]][:])}
	case r.done[r.want[h.Index]]:
		return &ProtocolError{Msg: fmt.Sprintf("object %x sent twice", h.ID[:])}
	case h.DataSize > streamwire.MaxDataSize || h.MetaSize > streamwire.MaxMetadataSize:
		return &ProtocolError{Msg: fmt.Sprintf("object %x announces %d bytes of data and %d of metadata, beyond the limits", h.ID[:], h.DataSize, h.MetaSize)}
	}
	return nil
}

// object receives one object's bytes and stores it (small objects on a
// worker). A non-nil error means the connection is unusable.
func (r *receiver) object(ctx context.Context, h *streamwire.ObjectHeader, i int) error {
	meta := make([]byte, h.MetaSize)
	if err := r.c.ReadFull(meta, nil); err != nil {
		r.finish(h, i, streamwire.StatusConnectionLost, err.Error())
		return err
	}
	if h.DataSize <= smallMax {
		return r.small(ctx, h, i, meta)
	}
	buf, err := r.st.Create(ctx, h.ID, h.DataSize, meta)
	if err != nil {
		status, msg := r.storeStatus(h.ID, err)
		derr := r.drain(int64(h.DataSize) + streamwire.DigestSize)
		r.finish(h, i, status, msg)
		return derr
	}
	status, msg, err := r.fill(h, buf, meta)
	if status != streamwire.StatusOK {
		r.st.Abort(context.Background(), h.ID)
	}
	r.finish(h, i, status, msg)
	return err
}

// fill reads the data into buf segment by segment while every core hashes
// the segments that have arrived (and relays may forward them), then
// checks the digest and seals.
func (r *receiver) fill(h *streamwire.ObjectHeader, buf, meta []byte) (streamwire.Status, string, error) {
	inflight := r.opt.Inflight
	a := inflight.start(h.ID, buf, meta)
	fail := func(st streamwire.Status, msg string, err error) (streamwire.Status, string, error) {
		inflight.finish(h.ID, a, false, [32]byte{}, func() {}) // the caller aborts
		return st, msg, err
	}
	pool := b3.NewPool(uint64(len(buf)))
	for off := 0; off < len(buf); {
		n := min(b3.SegmentSize, len(buf)-off)
		if err := r.c.ReadFull(buf[off:off+n], nil); err != nil {
			pool.Close()
			return fail(streamwire.StatusConnectionLost, err.Error(), err)
		}
		if n == b3.SegmentSize {
			pool.Add(off/b3.SegmentSize, buf[off:off+n])
		}
		inflight.progress(a, off+n)
		r.opt.Progress(int64(n), 0)
		off += n
	}
	var want [32]byte
	err := r.c.ReadFull(want[:], nil)
	got := pool.Sum(buf)
	if err != nil {
		return fail(streamwire.StatusConnectionLost, err.Error(), err)
	}
	if got != want {
		r.opt.Stats.IntegrityFailures.Add(1)
		return fail(streamwire.StatusIntegrityFailure, msgDigestMismatch, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.st.SealDigest(ctx, h.ID, got); err != nil {
		status, msg := r.storeStatus(h.ID, err)
		return fail(status, msg, nil)
	}
	// Our reference keeps the memory in place until relays reading it end.
	inflight.finish(h.ID, a, true, got, func() { r.st.Release(context.Background(), h.ID) })
	return streamwire.StatusOK, "", nil
}

// small receives a small object into memory and verifies it; a worker
// then stores it with one CreateAndSeal.
func (r *receiver) small(ctx context.Context, h *streamwire.ObjectHeader, i int, meta []byte) error {
	data := make([]byte, h.DataSize+streamwire.DigestSize)
	if err := r.c.ReadFull(data, nil); err != nil {
		r.finish(h, i, streamwire.StatusConnectionLost, err.Error())
		return err
	}
	r.opt.Progress(int64(h.DataSize), 0)
	var want [32]byte
	copy(want[:], data[h.DataSize:])
	data = data[:h.DataSize]
	if b3.Sum(data) != want {
		r.opt.Stats.IntegrityFailures.Add(1)
		r.finish(h, i, streamwire.StatusIntegrityFailure, msgDigestMismatch)
		return nil
	}
	r.slots <- struct{}{}
	r.wg.Add(1)
	go func() {
		defer func() { <-r.slots; r.wg.Done() }()
		status, msg := streamwire.StatusOK, ""
		if err := r.st.CreateAndSealDigest(ctx, h.ID, data, meta, want); err != nil {
			status, msg = r.storeStatus(h.ID, err)
		}
		r.finish(h, i, status, msg)
	}()
	return nil
}

// drain discards n bytes of an object that cannot be stored, keeping the
// connection usable for the objects after it.
func (r *receiver) drain(n int64) error {
	for n > 0 {
		step := min(n, stepSize)
		r.c.NC.SetReadDeadline(time.Now().Add(r.c.Timeout))
		if _, err := io.CopyN(io.Discard, r.c.R, step); err != nil {
			return err
		}
		n -= step
	}
	return nil
}

// storeStatus maps a local store error to an object status.
func (r *receiver) storeStatus(id streamwire.ID, err error) (streamwire.Status, string) {
	return storeStatus(r.st, id, err)
}

const msgDigestMismatch = "BLAKE3 of the received data does not match the sender's digest"
