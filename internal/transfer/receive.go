package transfer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/tracing"
	"github.com/plasmastream/plasmastream/internal/wire"
	"github.com/plasmastream/plasmastream/store"
	"golang.org/x/sync/errgroup"
)

// ReceiveOptions tune the receiving side.
type ReceiveOptions struct {
	Stats *Stats
	// Progress, if set, is called as bytes arrive and objects complete.
	Progress func(bytes int64, objects int)
	// Expect, if set, is told the size (data and metadata) of each object
	// the peer announces, before its bytes arrive.
	Expect func(bytes int64)
	// Partials, if set, publishes large objects while they arrive, so that
	// RELAY and RANGE requests forward them cut-through; it keeps the
	// verified part of one whose COPY or RELAY broke, and such an object
	// is resumed from there (as RANGEs from the same peer) by the next
	// COPY or RELAY of it.
	Partials *Partials
	// Peer names the source in messages (its address).
	Peer string
	// Held, if set, takes the store references to the objects reported
	// in the store (received or already there), for the caller to release
	// once its reply is sent; without, Receive releases them when it
	// returns. Either way the objects of one request cannot evict each
	// other while it runs: what does not fit besides them is StoreFull.
	Held *Held
}

// storeWorkers bounds the batches of small objects being stored at once.
const storeWorkers = 4

// smallMax is the largest object received into a scratch buffer and
// stored with a CreateAndSealBatch; larger ones are received in place.
const smallMax = 1 << 20

// smallBatchBytes is the size of the batch of verified small objects from
// which the receiver stores them without waiting for more, and of the
// slabs their bytes are received into.
const smallBatchBytes = 1 << 20

// Receive fetches ids into st with a COPY or TAKE over a connection dial
// opens, and returns one result per id, in order. Objects already in st
// are reported AlreadyPresent without being requested (and without
// dialling, when that is all of them). The error is the peer-level
// failure, if any (objects not finished then carry its status); per-object
// failures are in the results. Every object reported OK or AlreadyPresent
// is referenced in opt.Held (see there), and was when a TAKE's source was
// told to delete it.
func Receive(ctx context.Context, dial func() (*Conn, error), st *store.Client, kind streamwire.Kind, ids []streamwire.ID, opt ReceiveOptions) ([]streamwire.ObjectResult, error) {
	if opt.Stats == nil {
		opt.Stats = &Stats{}
	}
	if opt.Progress == nil {
		opt.Progress = func(int64, int) {}
	}
	if opt.Expect == nil {
		opt.Expect = func(int64) {}
	}
	if opt.Held == nil {
		opt.Held = NewHeld(st)
		defer opt.Held.Release()
	}
	res := make([]streamwire.ObjectResult, len(ids))
	for i := range res {
		res[i].ID = ids[i]
	}
	want, err := missing(ctx, st, ids, res, opt.Held)
	if err != nil || len(want) == 0 {
		return res, err
	}
	if want = resume(ctx, dial, st, kind, ids, want, res, opt); len(want) == 0 {
		return res, nil
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
	r := &receiver{c: c, st: st, d: dest{st: st, partials: opt.Partials, held: opt.Held}, kind: kind,
		opt: opt, res: res, want: want, ids: ids}
	r.stores.SetLimit(storeWorkers)
	err = r.run(ctx, kind)
	r.storeBatch(ctx) // verified objects are stored even if the connection broke
	r.stores.Wait()
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

// resume fetches, as verified RANGEs from the same peer, the objects
// whose earlier COPY or RELAY broke and left their verified groups in
// opt.Partials, and returns the indexes of the others. A TAKE takes every
// object whole (only objects sent by its exchange are deleted at the
// source).
func resume(ctx context.Context, dial func() (*Conn, error), st *store.Client, kind streamwire.Kind, ids []streamwire.ID, want []int, res []streamwire.ObjectResult, opt ReceiveOptions) []int {
	if opt.Partials == nil || kind == streamwire.KindTake {
		return want
	}
	var rest []int
	for _, i := range want {
		if !opt.Partials.Suspended(ids[i]) {
			rest = append(rest, i)
			continue
		}
		f := Fetch(ctx, st, ids[i], []Source{{Node: opt.Peer, Addr: opt.Peer, Full: true}}, FetchOptions{
			Stats: opt.Stats, Partials: opt.Partials, Held: opt.Held,
			Dial:     func(context.Context, string) (*Conn, error) { return dial() },
			Progress: func(n int64) { opt.Progress(n, 0) },
			Expect:   opt.Expect,
		})
		res[i] = f.ObjectResult
		if f.Status.Success() {
			opt.Progress(0, 1)
		}
	}
	return rest
}

// missing marks the ids st already holds, keeping their references in
// held, and returns the indexes of the others.
func missing(ctx context.Context, st *store.Client, ids []streamwire.ID, res []streamwire.ObjectResult, held *Held) ([]int, error) {
	objs, err := st.Get(ctx, ids, 0)
	if err != nil {
		for i := range res {
			res[i].Status, res[i].Message = streamwire.StatusStoreError, err.Error()
		}
		return nil, fmt.Errorf("local store: %w", err)
	}
	var want []int
	for i, o := range objs {
		if o != nil {
			res[i].Status = streamwire.StatusAlreadyPresent
			held.add(o.ID, uint64(len(o.Data)+len(o.Metadata)))
		} else {
			want = append(want, i)
		}
	}
	return want, nil
}

type receiver struct {
	c    *Conn
	st   *store.Client
	d    dest
	kind streamwire.Kind
	opt  ReceiveOptions
	res  []streamwire.ObjectResult
	ids  []streamwire.ID
	want []int        // request index -> index in res
	done map[int]bool // res indexes whose header arrived

	// Small objects are stored in batches by workers, while the next
	// objects arrive: a batch goes to the store when it is large or
	// when the connection has nothing more buffered (so that no object
	// waits on the network for the next).
	stores errgroup.Group // at most storeWorkers at once
	batch  []smallObject
	bytes  int        // of the objects in batch
	slab   []byte     // where small objects are received, carved per object
	mu     sync.Mutex // guards res statuses, acks on c, ackErr
	ackErr error

	ctx     context.Context   // of the request, for the objects' spans
	started map[int]time.Time // when each object's header arrived (only while tracing)
}

func (r *receiver) run(ctx context.Context, kind streamwire.Kind) error {
	r.done = make(map[int]bool, len(r.want))
	req := streamwire.Copy{IDs: make([]streamwire.ID, len(r.want))}
	for j, i := range r.want {
		req.IDs[j] = r.ids[i]
	}
	t := map[streamwire.Kind]streamwire.Type{streamwire.KindCopy: streamwire.TypeCopy,
		streamwire.KindTake: streamwire.TypeTake, streamwire.KindRelay: streamwire.TypeRelay}[kind]
	r.ctx = ctx
	if tracing.Enabled() {
		r.started = make(map[int]time.Time, len(r.want))
	}
	if err := r.c.Propagate(ctx); err != nil {
		return err
	}
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
		r.storeBeforeWait(ctx, 256) // an object header frame, with room to spare
		t, p, err := r.c.ReadFrame(streamwire.MaxControlFrame)
		if err != nil {
			return err
		}
		switch t {
		case streamwire.TypeCopyEnd:
			r.storeBatch(ctx)
			r.stores.Wait()
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
		if r.started != nil {
			r.mu.Lock()
			r.started[i] = time.Now()
			r.mu.Unlock()
		}
		if h.Status != streamwire.StatusOK {
			r.res[i].Status = h.Status
			r.opt.Progress(0, 1)
			continue
		}
		r.opt.Expect(int64(h.DataSize) + int64(h.MetaSize))
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
	if status == streamwire.StatusStoreFull && r.kind == streamwire.KindTake {
		msg += "; it stays at the source"
	}
	r.res[i].Status, r.res[i].Message = status, msg
	if status == streamwire.StatusOK {
		r.res[i].Bytes = h.DataSize + uint64(h.MetaSize)
		r.opt.Stats.BytesReceived.Add(r.res[i].Bytes)
		r.opt.Stats.ObjectsReceived.Add(1)
	}
	if start, ok := r.started[i]; ok {
		objectSpan(r.ctx, start, h, r.opt.Peer, status, msg)
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
	case h.OutboardSize != 0 && (h.OutboardSize > streamwire.MaxOutboardSize || int(h.OutboardSize) != bao.OutboardSize(h.DataSize)):
		return &ProtocolError{Msg: fmt.Sprintf("object %x of %d bytes announces a %d-byte outboard", h.ID[:], h.DataSize, h.OutboardSize)}
	}
	return nil
}

// object receives one object's bytes and stores it (small objects on a
// worker). A non-nil error means the connection is unusable.
func (r *receiver) object(ctx context.Context, h *streamwire.ObjectHeader, i int) error {
	n := int(h.MetaSize) + 2*streamwire.DigestSize + int(h.OutboardSize)
	var head []byte
	if h.DataSize <= smallMax {
		head = r.scratch(n) // kept with the object until it is stored
	} else {
		head = make([]byte, n)
	}
	r.storeBeforeWait(ctx, len(head))
	if err := r.c.ReadFull(head, nil); err != nil {
		r.finish(h, i, streamwire.StatusConnectionLost, err.Error())
		return err
	}
	meta, outboard := head[:h.MetaSize], head[int(h.MetaSize)+2*streamwire.DigestSize:]
	digest := wire.Digest(head[h.MetaSize:])
	if wire.Digest(head[int(h.MetaSize)+streamwire.DigestSize:]) != bao.Sum(meta) {
		r.opt.Stats.IntegrityFailures.Add(1)
		derr := r.drain(int64(h.DataSize))
		r.finish(h, i, streamwire.StatusIntegrityFailure, fmt.Sprintf("the metadata of object %x does not match its BLAKE3 digest", h.ID[:]))
		return derr
	}
	if h.DataSize <= smallMax {
		return r.small(ctx, h, i, meta, digest)
	}
	var tree *bao.Tree
	if len(outboard) > 0 {
		var err error
		if tree, err = bao.Parse(outboard, h.DataSize, digest); err != nil {
			r.opt.Stats.IntegrityFailures.Add(1)
			derr := r.drain(int64(h.DataSize))
			r.finish(h, i, streamwire.StatusIntegrityFailure, fmt.Sprintf("the outboard sent with object %x does not match its digest: %v", h.ID[:], err))
			return derr
		}
	}
	r.storeBatch(ctx) // a large object takes a while: store what came before it
	size := h.DataSize + uint64(h.MetaSize)
	buf, err := r.d.create(ctx, h.ID, h.DataSize, meta)
	if err != nil {
		status, msg := r.d.status(h.ID, size, err)
		derr := r.drain(int64(h.DataSize))
		r.finish(h, i, status, msg)
		return derr
	}
	ps := r.opt.Partials
	var p *Partial // readers (RELAY, RANGE) find it there as it arrives
	switch {
	case ps == nil:
	case tree != nil:
		p = ps.Add(h.ID, tree, buf, meta)
	default:
		p = ps.addWhole(h.ID, digest, buf, meta)
	}
	status, msg, err := r.fill(h, buf, digest, tree, p)
	abort := func() { r.st.Abort(context.Background(), h.ID) }
	switch {
	case status == streamwire.StatusOK:
		if tree != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			r.st.SetOutboard(sctx, h.ID, outboard) // else the store hashes it again later
			cancel()
		}
		// Our reference keeps the object in the store until the request's
		// reply is sent, and its memory in place until readers end.
		release := r.d.sealed(h.ID, size)
		if p == nil {
			release()
		} else {
			ps.Finish(p, release)
		}
	case p == nil:
		abort()
	case status == streamwire.StatusConnectionLost && ps.Keeps() && ps.prefix(p) > 0:
		// Keep what verified for the next COPY of it to resume.
		if ps.Suspend(p, abort) {
			msg = fmt.Sprintf("%s (its first %d bytes verified and are kept for a resumption)", msg, ps.prefix(p))
		}
	default:
		ps.end(p, abort)
	}
	r.finish(h, i, status, msg)
	return err
}

// fill reads the data into buf a segment at a time and seals it once it
// is verified: every core checks the segments that have arrived — with an
// outboard group by group, and a corrupt group rejects the object at once
// (the rest of its bytes are drained unread); without, hashing them for
// the digest compared at the end. p, if set, learns what verified.
func (r *receiver) fill(h *streamwire.ObjectHeader, buf []byte, digest [32]byte, tree *bao.Tree, p *Partial) (status streamwire.Status, msg string, err error) {
	v := bao.NewVerifier(tree, buf, func(off, n int) {
		if tree != nil {
			r.opt.Stats.BytesVerified.Add(uint64(n))
		}
		if p != nil {
			r.opt.Partials.verifiedBytes(p, off, n)
		}
	})
	defer v.Close()
	b := v.Batch()
	corrupt := func(off int) (streamwire.Status, string, error) {
		g := b.Wait()
		r.opt.Stats.IntegrityFailures.Add(1)
		r.opt.Stats.CorruptGroups.Add(1)
		from, n := tree.Span(g)
		return streamwire.StatusIntegrityFailure, fmt.Sprintf("group %d (bytes %d to %d) of object %x does not match its BLAKE3 outboard", g, from, from+n, h.ID[:]),
			r.drain(int64(len(buf) - off))
	}
	for off := 0; off < len(buf); {
		n := min(bao.SegmentSize, len(buf)-off)
		if err := r.c.ReadFull(buf[off:off+n], nil); err != nil {
			b.Wait()
			return streamwire.StatusConnectionLost, err.Error(), err
		}
		r.opt.Progress(int64(n), 0)
		b.Add(off, n)
		if b.Bad() >= 0 {
			return corrupt(off + n)
		}
		off += n
	}
	if b.Wait() >= 0 {
		return corrupt(len(buf))
	}
	if v.Close(); tree == nil && v.Sum() != digest {
		r.opt.Stats.IntegrityFailures.Add(1)
		return streamwire.StatusIntegrityFailure, msgDigestMismatch, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.st.SealDigest(ctx, h.ID, digest); err != nil {
		status, msg := r.d.status(h.ID, uint64(len(buf)+int(h.MetaSize)), err)
		return status, msg, nil
	}
	return streamwire.StatusOK, "", nil
}

// small receives a small object into a slab and verifies it; it is then
// stored with others in one CreateAndSealBatch.
func (r *receiver) small(ctx context.Context, h *streamwire.ObjectHeader, i int, meta []byte, want wire.Digest) error {
	data := r.scratch(int(h.DataSize))
	r.storeBeforeWait(ctx, len(data))
	if err := r.c.ReadFull(data, nil); err != nil {
		r.finish(h, i, streamwire.StatusConnectionLost, err.Error())
		return err
	}
	r.opt.Progress(int64(h.DataSize), 0)
	if bao.Sum(data) != want {
		r.opt.Stats.IntegrityFailures.Add(1)
		r.finish(h, i, streamwire.StatusIntegrityFailure, msgDigestMismatch)
		return nil
	}
	r.batch = append(r.batch, smallObject{h: h, i: i, obj: store.BatchObject{ID: h.ID, Data: data, Metadata: meta, Digest: want}})
	if r.bytes += len(data) + len(meta); r.bytes >= smallBatchBytes {
		r.storeBatch(ctx)
	}
	return nil
}

// smallObject is a verified small object waiting in the batch.
type smallObject struct {
	h   *streamwire.ObjectHeader
	i   int
	obj store.BatchObject
}

// scratch returns n bytes for a small object, carved from the current
// slab. Slabs are never reused: one is freed when the last object cut
// from it has been stored.
func (r *receiver) scratch(n int) []byte {
	if n > smallBatchBytes/4 {
		return make([]byte, n)
	}
	if cap(r.slab)-len(r.slab) < n {
		r.slab = make([]byte, 0, smallBatchBytes)
	}
	b := r.slab[len(r.slab) : len(r.slab)+n : len(r.slab)+n]
	r.slab = r.slab[:len(r.slab)+n]
	return b
}

// storeBeforeWait stores the batch unless the next n bytes are already
// buffered: no verified object waits for the network (a sender that
// stalls, an object that takes a while to arrive).
func (r *receiver) storeBeforeWait(ctx context.Context, n int) {
	if r.c.Buffered() < n {
		r.storeBatch(ctx)
	}
}

// storeBatch hands the batch of small objects to a worker, which stores
// them and acknowledges each.
func (r *receiver) storeBatch(ctx context.Context) {
	if len(r.batch) == 0 {
		return
	}
	batch := r.batch
	r.batch, r.bytes = nil, 0
	r.stores.Go(func() error {
		objs := make([]store.BatchObject, len(batch))
		for j := range batch {
			objs[j] = batch[j].obj
		}
		errs := r.d.createAndSealBatch(ctx, objs)
		for j, b := range batch {
			status, msg := streamwire.StatusOK, ""
			if errs[j] != nil {
				status, msg = r.d.status(b.obj.ID, uint64(len(b.obj.Data)+len(b.obj.Metadata)), errs[j])
			}
			r.finish(b.h, b.i, status, msg)
		}
		return nil
	})
}

// drain discards n bytes of an object that cannot be stored, keeping the
// connection usable for the objects after it.
func (r *receiver) drain(n int64) error {
	return r.c.Discard(n)
}

const msgDigestMismatch = "BLAKE3 of the received data does not match the sender's digest"
