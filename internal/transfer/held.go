package transfer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/wire"
	"github.com/plasmastream/plasmastream/store"
)

// Held is the store references one request keeps on the objects it will
// report as being in the destination store (received, or already there),
// from the moment each is sealed or found until the request's reply has
// been sent (for a TAKE, that is after the source was told which objects
// are sealed here and deleted its copies).
//
// Invariant: the store evicts only sealed objects nobody references, so
// while a request holds its objects, its own later objects cannot evict
// them; what does not fit besides them is refused (store full) instead,
// and a reply never reports an object that is no longer there. Safe for
// concurrent use.
type Held struct {
	st      *store.Client
	mu      sync.Mutex
	ids     []store.ObjectID // one store reference each
	ends    []func()         // shares of references also held by others (relays, RANGE readers)
	objects int
	bytes   uint64
}

// NewHeld makes an empty set of references to objects of st.
func NewHeld(st *store.Client) *Held { return &Held{st: st} }

// add takes over a reference to id, an object of size bytes.
func (h *Held) add(id streamwire.ID, size uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ids = append(h.ids, id)
	h.objects++
	h.bytes += size
}

// addShare takes over end, the share of a reference that another holder
// (relays or RANGE readers of the object) also has.
func (h *Held) addShare(end func(), size uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ends = append(h.ends, end)
	h.objects++
	h.bytes += size
}

// Totals reports how many objects, of how many bytes, are held.
func (h *Held) Totals() (objects int, bytes uint64) {
	if h == nil {
		return 0, 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.objects, h.bytes
}

// Release drops every reference; call it once the reply is sent. The
// Held is empty afterwards and may be used again.
func (h *Held) Release() {
	if h == nil {
		return
	}
	h.mu.Lock()
	ids, ends := h.ids, h.ends
	h.ids, h.ends, h.objects, h.bytes = nil, nil, 0, 0
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(ids) > 0 {
		n := min(len(ids), store.MaxGetIDs)
		h.st.Release(ctx, ids[:n]...)
		ids = ids[n:]
	}
	for _, end := range ends {
		end()
	}
}

// Hold takes a reference to id, if the store has it sealed, into h (nil:
// the reference is dropped at once) and reports whether it had.
func Hold(ctx context.Context, st *store.Client, h *Held, id streamwire.ID) (bool, error) {
	objs, err := st.Get(ctx, []store.ObjectID{id}, 0)
	if err != nil || objs[0] == nil {
		return false, err
	}
	if h == nil {
		st.Release(context.Background(), id)
	} else {
		h.add(id, uint64(len(objs[0].Data)+len(objs[0].Metadata)))
	}
	return true, nil
}

// split shares one reference between two holders: release runs when both
// have let go.
func split(release func()) (a, b func()) {
	var left atomic.Int32
	left.Store(2)
	end := func() {
		if left.Add(-1) == 0 {
			release()
		}
	}
	return end, end
}

// dest is the store a request receives into, with what the server keeps
// there for it.
type dest struct {
	st       *store.Client
	partials *Partials // this server's partial objects, or nil
	held     *Held     // the request's references, or nil
}

// create creates object id. An unsealed object id that this server keeps
// from a transfer that broke (for one to resume) is its own, not another
// client's: it is discarded, and the object created afresh.
func (d dest) create(ctx context.Context, id streamwire.ID, size uint64, meta []byte) ([]byte, error) {
	buf, err := d.st.Create(ctx, id, size, meta)
	if errors.Is(err, store.ErrObjectExists) && d.partials.Discard(ctx, id) {
		buf, err = d.st.Create(ctx, id, size, meta)
	}
	return buf, err
}

// createAndSeal stores a small object whole, in one round trip; with a
// Held, the reference it keeps goes there. A kept partial of it is
// discarded first, as by create.
func (d dest) createAndSeal(ctx context.Context, id streamwire.ID, data, meta []byte, digest wire.Digest) error {
	put := d.st.CreateAndSealDigest
	if d.held != nil {
		put = d.st.CreateAndSealKeep
	}
	err := put(ctx, id, data, meta, digest)
	if errors.Is(err, store.ErrObjectExists) && d.partials.Discard(ctx, id) {
		err = put(ctx, id, data, meta, digest)
	}
	if err == nil && d.held != nil {
		d.held.add(id, uint64(len(data)+len(meta)))
	}
	return err
}

// createAndSealBatch stores small objects with few requests, each as
// createAndSeal would (the Keep of each is set here), and returns one
// error per object.
func (d dest) createAndSealBatch(ctx context.Context, objs []store.BatchObject) []error {
	for i := range objs {
		objs[i].Keep = d.held != nil
	}
	errs, _ := d.st.CreateAndSealBatch(ctx, objs) // a failed request fails each of its objects
	for i, err := range errs {
		o := &objs[i]
		switch {
		case errors.Is(err, store.ErrObjectExists) && d.partials.Discard(ctx, o.ID):
			errs[i] = d.createAndSeal(ctx, o.ID, o.Data, o.Metadata, o.Digest)
		case err == nil && d.held != nil:
			d.held.add(o.ID, uint64(len(o.Data)+len(o.Metadata)))
		}
	}
	return errs
}

// sealed keeps the reference to object id (of size bytes) that its
// creation gave, now that it is sealed: in the request's Held, or dropped
// at once without one. The reference is shared with others (relays, RANGE
// readers) that run their share of it when they end.
func (d dest) sealed(id streamwire.ID, size uint64) (others func()) {
	release := func() { d.st.Release(context.Background(), id) }
	if d.held == nil {
		return release
	}
	mine, others := split(release)
	d.held.addShare(mine, size)
	return others
}

// status maps a local store error for object id, of size bytes, to an
// object status and message.
func (d dest) status(id streamwire.ID, size uint64, err error) (streamwire.Status, string) {
	switch {
	case errors.Is(err, store.ErrObjectExists):
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if ok, herr := Hold(ctx, d.st, d.held, id); herr == nil && ok {
			return streamwire.StatusAlreadyPresent, ""
		}
		if d.partials.Busy(id) {
			return streamwire.StatusStoreError, "another transfer on this server (a COPY, TAKE, RELAY, FETCH, PULL or resumption) is receiving this object; try again when it has ended"
		}
		// Being created by another client of the store, or by a transfer
		// here that ended meanwhile, or being deleted: the store's
		// message says which state, not who.
		return streamwire.StatusStoreError, fmt.Sprintf("the destination store already has the object but not ready to read (%v): another client of it, or another transfer on this server, is creating it, or it is being deleted and a reader still holds it; try again when that has ended", err)
	case errors.Is(err, store.ErrOutOfMemory):
		return streamwire.StatusStoreFull, d.full(id, size, err)
	}
	return streamwire.StatusStoreError, err.Error()
}

// full explains a store-full refusal: the store's own figures, what this
// request keeps there, and what to do.
func (d dest) full(id streamwire.ID, size uint64, err error) string {
	msg := strings.TrimPrefix(err.Error(), "store full: ")
	if !strings.Contains(msg, fmt.Sprintf("%x", id[:])) {
		msg = fmt.Sprintf("object %x of %d bytes: %s", id[:], size, msg)
	}
	if n, b := d.held.Totals(); n > 0 {
		msg += fmt.Sprintf("; this request keeps the %d %s (%d bytes) it already placed there until it ends, so that they cannot evict one another",
			n, plural(n, "object"), b)
	}
	return msg + "; free space in the destination store or move fewer objects at a time"
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
