package store

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// BatchObject is one object of CreateAndSealBatch.
type BatchObject struct {
	ID       ObjectID
	Data     []byte // at most MaxInlineData bytes
	Metadata []byte // at most MaxMetadata bytes
	// Digest is the BLAKE3 hash of Data, kept by the store, when the
	// caller knows it (and vouches for it); zero when not.
	Digest Digest
	// Keep leaves this client a reference to the object, to Release, as
	// CreateAndSealKeep does.
	Keep bool
}

// batchChunkBytes is the payload size from which a batch is split into
// several requests: large enough that a request costs little per object,
// small enough that the store starts on one while the next is encoded, and
// that neither side keeps megabytes of buffer per connection.
const batchChunkBytes = 1 << 20

// CreateAndSealBatch stores many small objects in few round trips: the
// objects go to the store in requests of about a megabyte (two in flight
// at once), each stored on its own. It returns one error per object, nil
// for each stored: ErrObjectExists for an id already in the store (or
// earlier in objs), ErrOutOfMemory when no room is left for it, ErrTooLarge
// for one beyond the limits (not sent). The error is for the batch as a
// whole: the connection failed or ctx ended; objects whose outcome is then
// unknown carry it too (each was stored whole or not at all).
func (c *Client) CreateAndSealBatch(ctx context.Context, objs []BatchObject) ([]error, error) {
	errs := make([]error, len(objs))
	var g errgroup.Group
	g.SetLimit(2) // the store stores one request while the next arrives
	var chunk []int
	size := 4
	flush := func() {
		idx := chunk
		chunk, size = nil, 4
		g.Go(func() error { return c.batchRequest(ctx, objs, idx, errs) })
	}
	for i := range objs {
		o := &objs[i]
		if len(o.Data) > MaxInlineData || len(o.Metadata) > MaxMetadata {
			errs[i] = fmt.Errorf("create-and-seal %s: %d bytes of data, %d of metadata exceed %d and %d: %w",
				o.ID, len(o.Data), len(o.Metadata), MaxInlineData, MaxMetadata, ErrTooLarge)
			continue
		}
		n := storewire.IDSize + 4 + len(o.Data) + 4 + len(o.Metadata) + 1 + storewire.DigestSize
		if len(chunk) > 0 && (size+n > batchChunkBytes || len(chunk) == storewire.MaxBatchObjects) {
			flush()
		}
		chunk = append(chunk, i)
		size += n
	}
	if len(chunk) > 0 {
		flush()
	}
	return errs, g.Wait()
}

// batchRequest sends objs[idx...] as one CreateAndSealBatch and records
// each outcome in errs.
func (c *Client) batchRequest(ctx context.Context, objs []BatchObject, idx []int, errs []error) error {
	m := storewire.CreateAndSealBatch{Objects: make([]storewire.CreateAndSeal, len(idx))}
	for j, i := range idx {
		o := &objs[i]
		m.Objects[j] = storewire.CreateAndSeal{ID: o.ID, Data: o.Data, Metadata: o.Metadata,
			Keep: o.Keep, HasDigest: !o.Digest.IsZero(), Digest: o.Digest}
	}
	fail := func(err error) error {
		for _, i := range idx {
			errs[i] = fmt.Errorf("create-and-seal %s: outcome unknown: %w", objs[i].ID, err)
		}
		return err
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	// Encoded in a reused buffer: a request costs no allocation and no
	// page faults.
	buf, _ := c.batchBufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
		*buf = make([]byte, 0, batchChunkBytes+64<<10)
	}
	frame := m.Append(append((*buf)[:0], make([]byte, storewire.HeaderSize)...))
	p, err := c.m.startFramed(storewire.TypeCreateAndSealBatch, frame)
	if cap(frame) <= 2*batchChunkBytes { // sent: the buffer is free again
		*buf = frame[:0]
		c.batchBufs.Put(buf)
	}
	f, err := c.m.reply(ctx, storewire.TypeCreateAndSealBatch, p, err, c.releaseKeptLate(m.Objects))
	if err != nil {
		return fail(err)
	}
	var r storewire.CreateAndSealBatchReply
	if err := r.Decode(f.p); err != nil || len(r.Results) != len(idx) {
		return fail(errors.Join(errors.New("create-and-seal batch: malformed reply"), err))
	}
	for j, res := range r.Results {
		if res.Code != storewire.CodeOK {
			errs[idx[j]] = &Error{Code: res.Code, Message: res.Message}
		}
	}
	return nil
}

// releaseKeptLate releases the objects kept by a batch reply that nobody
// waits for any more (its context ended).
func (c *Client) releaseKeptLate(objs []storewire.CreateAndSeal) func(frame) {
	return func(f frame) {
		var r storewire.CreateAndSealBatchReply
		if f.t != storewire.TypeCreateAndSealBatch|storewire.ReplyBit || r.Decode(f.p) != nil {
			return
		}
		var kept []ObjectID
		for j, res := range r.Results {
			if res.Code == storewire.CodeOK && j < len(objs) && objs[j].Keep {
				kept = append(kept, objs[j].ID)
			}
		}
		if len(kept) > 0 {
			c.Release(context.Background(), kept...)
		}
	}
}
