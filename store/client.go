package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"

	"golang.org/x/sys/unix"

	"github.com/plasmastream/plasmastream/internal/arena"
	"github.com/plasmastream/plasmastream/internal/storewire"
)

// Limits of the store protocol.
const (
	MaxMetadata   = storewire.MaxMetadata   // bytes of metadata per object
	MaxInlineData = storewire.MaxInlineData // largest CreateAndSeal data
	MaxGetIDs     = storewire.MaxIDsPerRequest
)

// Client is a connection to a plasma-store-server with the store's arena
// mapped into this process.
type Client struct {
	m        *mux
	arena    *os.File // kept open for zero-copy sends (ArenaFile)
	socket   string
	dialCfg  connectConfig // how it connected, for Subscribe
	rw, ro   []byte        // writable and read-only mappings of the arena
	capacity uint64
	// batchBufs holds *[]byte buffers that CreateAndSealBatch requests
	// are encoded in.
	batchBufs sync.Pool
	// populated tracks which chunks of rw are mapped: Create maps a
	// large object's range before handing it out (see arena.Populated).
	populated    *arena.Populated
	stopPrefault context.CancelFunc // called by Close
	prefaulting  chan struct{}      // closed when the WithPrefault goroutine returns
}

// prefaultMin is the smallest object whose range Create populates at
// once: below it, a few page faults cost less than the madvise.
const prefaultMin = 256 << 10

// Object is a sealed object returned by Get: read-only views over shared
// memory, valid until Release (or Close).
type Object struct {
	ID       ObjectID
	Data     []byte
	Metadata []byte
	// Offset is where Data starts in the arena (see ArenaFile).
	Offset uint64
	// Digest is the BLAKE3 hash of Data when the store knows it (it was
	// given at Seal, as Put does); zero when it does not.
	Digest Digest
}

// DefaultSocket is the unix socket plasma-store-server listens on unless
// told otherwise, and where every tool looks for it by default.
const DefaultSocket = "/tmp/plasma"

// Connect connects to the store listening on socket and maps its arena.
// It first checks that the socket is owned by this user or root (or an
// owner trusted with WithSocketOwner) and fails with ErrSocketOwner
// otherwise.
func Connect(ctx context.Context, socket string, opts ...ConnectOption) (*Client, error) {
	var cfg connectConfig
	for _, o := range opts {
		o(&cfg)
	}
	m, f, hr, err := dial(ctx, socket, cfg)
	if err != nil {
		return nil, err
	}
	rw, err := arena.Map(f, hr.ArenaSize, true)
	if err != nil {
		f.Close()
		m.close()
		return nil, err
	}
	ro, err := arena.Map(f, hr.ArenaSize, false)
	if err != nil {
		unix.Munmap(rw)
		f.Close()
		m.close()
		return nil, err
	}
	c := &Client{m: m, arena: f, socket: socket, dialCfg: cfg, rw: rw, ro: ro, capacity: hr.Capacity,
		populated: arena.NewPopulated(rw), prefaulting: make(chan struct{})}
	var pctx context.Context
	pctx, c.stopPrefault = context.WithCancel(context.Background())
	if cfg.prefault {
		go func() { defer close(c.prefaulting); c.populated.Run(pctx.Done()) }()
	} else {
		close(c.prefaulting)
	}
	return c, nil
}

// Close disconnects. The store releases every reference this client held
// and aborts its unsealed objects; every view this client returned becomes
// invalid (the arena is unmapped).
func (c *Client) Close() error {
	c.m.close()
	<-c.m.done
	c.stopPrefault()
	<-c.prefaulting // it maps rw
	err := unix.Munmap(c.rw)
	if err2 := unix.Munmap(c.ro); err == nil {
		err = err2
	}
	c.arena.Close()
	return err
}

// ArenaFile is the store's shared-memory file, for zero-copy sends of
// objects (sendfile from Object.Offset). It stays owned by the Client: do
// not close it, and do not use it after Close.
func (c *Client) ArenaFile() *os.File { return c.arena }

// Capacity is the number of bytes the store can hold.
func (c *Client) Capacity() uint64 { return c.capacity }

// Socket is the path this client is connected to.
func (c *Client) Socket() string { return c.socket }

func (c *Client) view(mem []byte, off, n uint64) ([]byte, error) {
	if off > uint64(len(mem)) || n > uint64(len(mem))-off {
		return nil, fmt.Errorf("store returned a range [%d, +%d) outside the arena of %d bytes", off, n, len(mem))
	}
	return mem[off : off+n : off+n], nil
}

// Create reserves an object of dataSize bytes with the given metadata
// (at most MaxMetadata bytes) and returns a writable view of its data.
// The object is invisible to others until Seal; the creator holds one
// reference to it (Release after Seal).
func (c *Client) Create(ctx context.Context, id ObjectID, dataSize uint64, metadata []byte) ([]byte, error) {
	buf, off, err := c.create(ctx, id, dataSize, metadata)
	if err == nil && dataSize >= prefaultMin {
		c.populated.Ensure(off, dataSize)
	}
	return buf, err
}

// create is Create without mapping the object's range: the view and its
// offset in the arena.
func (c *Client) create(ctx context.Context, id ObjectID, dataSize uint64, metadata []byte) ([]byte, uint64, error) {
	if len(metadata) > MaxMetadata {
		return nil, 0, fmt.Errorf("create %s: metadata of %d bytes exceeds %d: %w", id, len(metadata), MaxMetadata, ErrTooLarge)
	}
	f, err := c.m.call(ctx, storewire.TypeCreate, storewire.Create{ID: id, DataSize: dataSize, Metadata: metadata}.Append(nil), nil)
	if err != nil {
		return nil, 0, err
	}
	var loc storewire.Location
	if err := loc.Decode(f.p); err != nil {
		return nil, 0, fmt.Errorf("create %s: %w", id, err)
	}
	buf, err := c.view(c.rw, loc.Offset, loc.DataSize)
	return buf, loc.Offset, err
}

// CreateAndSeal stores a small object (data up to MaxInlineData bytes) in
// one round trip. The caller holds no reference afterwards.
func (c *Client) CreateAndSeal(ctx context.Context, id ObjectID, data, metadata []byte) error {
	return c.createAndSeal(ctx, id, data, metadata, Digest{}, false)
}

// CreateAndSealDigest is CreateAndSeal with the BLAKE3 digest of data,
// which the store keeps with the object (the caller vouches for it).
func (c *Client) CreateAndSealDigest(ctx context.Context, id ObjectID, data, metadata []byte, digest Digest) error {
	return c.createAndSeal(ctx, id, data, metadata, digest, false)
}

// CreateAndSealKeep is CreateAndSealDigest that leaves this client a
// reference to the object, as Create and Seal do: the object cannot be
// evicted until Release. One round trip stores and pins a small object
// (a transfer keeps what it received until its reply is sent).
func (c *Client) CreateAndSealKeep(ctx context.Context, id ObjectID, data, metadata []byte, digest Digest) error {
	return c.createAndSeal(ctx, id, data, metadata, digest, true)
}

// createAndSeal sends the digest unless it is zero (unknown).
func (c *Client) createAndSeal(ctx context.Context, id ObjectID, data, metadata []byte, digest Digest, keep bool) error {
	if len(data) > MaxInlineData || len(metadata) > MaxMetadata {
		return fmt.Errorf("create-and-seal %s: %d bytes of data, %d of metadata exceed %d and %d: %w",
			id, len(data), len(metadata), MaxInlineData, MaxMetadata, ErrTooLarge)
	}
	m := storewire.CreateAndSeal{ID: id, Data: data, Metadata: metadata, Keep: keep, HasDigest: !digest.IsZero(), Digest: digest}
	_, err := c.m.call(ctx, storewire.TypeCreateAndSeal, m.Append(nil), nil)
	return err
}

// Seal makes an object this client created immutable and visible.
func (c *Client) Seal(ctx context.Context, id ObjectID) error {
	_, err := c.m.call(ctx, storewire.TypeSeal, storewire.Seal{ID: id}.Append(nil), nil)
	return err
}

// SealDigest is Seal with the BLAKE3 digest of the data, which the store
// keeps with the object (the caller vouches for it).
func (c *Client) SealDigest(ctx context.Context, id ObjectID, digest Digest) error {
	_, err := c.m.call(ctx, storewire.TypeSeal, storewire.Seal{ID: id, HasDigest: true, Digest: digest}.Append(nil), nil)
	return err
}

// Outboard returns a sealed object's BLAKE3 digest and its bao outboard
// with 16 KiB chunk groups (8 bytes for an object of one group), which the
// store builds now if its background hasher has not yet.
func (c *Client) Outboard(ctx context.Context, id ObjectID) (Digest, []byte, error) {
	f, err := c.m.call(ctx, storewire.TypeOutboard, storewire.ObjectRef{ID: id}.Append(nil), nil)
	if err != nil {
		return Digest{}, nil, err
	}
	var r storewire.Outboard
	if err := r.Decode(f.p); err != nil {
		return Digest{}, nil, fmt.Errorf("outboard %s: malformed reply: %w", id, err)
	}
	return r.Digest, r.Outboard, nil
}

// SetOutboard hands the store the outboard of a sealed object this client
// verified, so that the store need not hash it again. The store checks it
// against the object's digest.
func (c *Client) SetOutboard(ctx context.Context, id ObjectID, outboard []byte) error {
	_, err := c.m.call(ctx, storewire.TypeSetOutboard, storewire.SetOutboard{ID: id, Outboard: outboard}.Append(nil), nil)
	return err
}

// Abort discards an unsealed object this client created.
func (c *Client) Abort(ctx context.Context, id ObjectID) error {
	_, err := c.m.call(ctx, storewire.TypeAbort, storewire.ObjectRef{ID: id}.Append(nil), nil)
	return err
}

// Release drops one reference, obtained by Get or Create, to each object
// (an id given twice drops two). The error names every object this client
// held no reference to (ErrNotReferenced).
func (c *Client) Release(ctx context.Context, ids ...ObjectID) error {
	f, err := c.m.call(ctx, storewire.TypeRelease, idList(0, ids).Append(nil), nil)
	if err != nil {
		return err
	}
	var r storewire.Codes
	if err := r.Decode(f.p); err != nil || len(r.Codes) != len(ids) {
		return errors.New("release: malformed reply")
	}
	var errs []error
	for i, code := range r.Codes {
		errs = append(errs, codeError(code, ids[i], "release"))
	}
	return errors.Join(errs...)
}

func idList(timeoutMs int64, ids []ObjectID) storewire.IDList {
	return storewire.IDList{TimeoutMs: timeoutMs, IDs: ids}
}

// Contains reports whether the object is sealed in the store.
func (c *Client) Contains(ctx context.Context, id ObjectID) (bool, error) {
	f, err := c.m.call(ctx, storewire.TypeContains, storewire.ObjectRef{ID: id}.Append(nil), nil)
	if err != nil {
		return false, err
	}
	var r storewire.Codes
	if err := r.Decode(f.p); err != nil || len(r.Codes) != 1 {
		return false, fmt.Errorf("contains %s: malformed reply", id)
	}
	return r.Codes[0] == 1, nil
}

// GetOption changes how Get treats the objects it returns.
type GetOption func(*storewire.Get)

// Internal marks a Get made on the store's behalf rather than for the
// objects' own use (a stream server sending a copy, a verifier): it does
// not count as a use, so the objects keep their place in the store's
// least-recently-used eviction order.
func Internal() GetOption { return func(m *storewire.Get) { m.Flags |= storewire.GetInternal } }

// Get returns the sealed objects, waiting up to timeout for those not yet
// sealed (negative: forever; zero: do not wait). The result has one entry
// per id, nil for an object that did not become available. Each non-nil
// entry holds a reference: Release it when done.
func (c *Client) Get(ctx context.Context, ids []ObjectID, timeout time.Duration, opts ...GetOption) ([]*Object, error) {
	if len(ids) > MaxGetIDs {
		return nil, fmt.Errorf("get: %d ids exceed %d: %w", len(ids), MaxGetIDs, ErrTooLarge)
	}
	ms := int64(-1)
	if timeout >= 0 {
		ms = timeout.Milliseconds()
		if ms == 0 && timeout > 0 {
			ms = 1
		}
	}
	m := storewire.Get{IDList: idList(ms, ids)}
	for _, o := range opts {
		o(&m)
	}
	f, err := c.m.call(ctx, storewire.TypeGet, m.Append(nil), c.releaseLate(ids))
	if err != nil {
		return nil, err
	}
	var r storewire.GetReply
	if err := r.Decode(f.p); err != nil || len(r.Objects) != len(ids) {
		return nil, fmt.Errorf("get: malformed reply (%v)", err)
	}
	out := make([]*Object, len(ids))
	for i, res := range r.Objects {
		if !res.Found {
			continue
		}
		o := &Object{ID: ids[i], Offset: res.Offset}
		if res.HasDigest {
			o.Digest = res.Digest
		}
		if o.Data, err = c.view(c.ro, res.Offset, res.DataSize); err == nil {
			o.Metadata, err = c.view(c.ro, res.Offset+res.DataSize, uint64(res.MetaSize))
		}
		if err != nil {
			return nil, err
		}
		out[i] = o
	}
	return out, nil
}

// releaseLate releases what a Get reply that nobody waits for any more
// (its context ended) grants.
func (c *Client) releaseLate(ids []ObjectID) func(frame) {
	return func(f frame) {
		var r storewire.GetReply
		if f.t != storewire.TypeGet|storewire.ReplyBit || r.Decode(f.p) != nil {
			return
		}
		var held []ObjectID
		for i, res := range r.Objects {
			if res.Found && i < len(ids) {
				held = append(held, ids[i])
			}
		}
		if len(held) > 0 {
			c.Release(context.Background(), held...)
		}
	}
}

// GetOne is Get for one id; a missing object is ErrObjectNotFound.
func (c *Client) GetOne(ctx context.Context, id ObjectID, timeout time.Duration, opts ...GetOption) (*Object, error) {
	objs, err := c.Get(ctx, []ObjectID{id}, timeout, opts...)
	if err != nil {
		return nil, err
	}
	if objs[0] == nil {
		return nil, &Error{Code: storewire.CodeObjectNotFound, Message: fmt.Sprintf("object %s not found in store %s", id, c.socket)}
	}
	return objs[0], nil
}

// Delete deletes objects. It returns one error per id: nil when deleted,
// or deferred until the last reference is released; ErrObjectNotFound or
// ErrObjectNotSealed otherwise.
func (c *Client) Delete(ctx context.Context, ids ...ObjectID) ([]error, error) {
	f, err := c.m.call(ctx, storewire.TypeDelete, idList(0, ids).Append(nil), nil)
	if err != nil {
		return nil, err
	}
	var r storewire.Codes
	if err := r.Decode(f.p); err != nil || len(r.Codes) != len(ids) {
		return nil, errors.New("delete: malformed reply")
	}
	errs := make([]error, len(ids))
	for i, code := range r.Codes {
		errs[i] = codeError(code, ids[i], "delete")
	}
	return errs, nil
}

// Evict asks the store to free at least n bytes by evicting least recently
// used unreferenced objects; it returns the bytes freed (data + metadata of
// the objects evicted: empty objects count 0).
func (c *Client) Evict(ctx context.Context, n uint64) (uint64, error) {
	f, err := c.m.call(ctx, storewire.TypeEvict, storewire.Number{N: n}.Append(nil), nil)
	if err != nil {
		return 0, err
	}
	var r storewire.Number
	if err := r.Decode(f.p); err != nil {
		return 0, fmt.Errorf("evict: %w", err)
	}
	return r.N, nil
}

// ColdTier is the URL of the store's cold tier (file:///dir or
// s3://bucket/prefix, never with credentials), "" when it has none or
// predates this request.
func (c *Client) ColdTier(ctx context.Context) (string, error) {
	f, err := c.m.call(ctx, storewire.TypeColdTier, nil, nil)
	if errors.Is(err, ErrInvalidRequest) {
		return "", nil // a store older than the request: it has no tier this client can name
	}
	if err != nil {
		return "", err
	}
	var r storewire.ColdTierReply
	if err := r.Decode(f.p); err != nil {
		return "", fmt.Errorf("cold tier: malformed reply: %w", err)
	}
	return r.URL, nil
}

// Adopt has the store read the records of objects from its cold tier
// that it does not know (another store sharing the tier wrote them), so
// that a Get restores them. found[i] reports whether the store now knows
// ids[i] (in memory or in its tier). It fails with ErrColdTier when the
// tier cannot answer, and with ErrInvalidRequest when the store has no
// tier.
func (c *Client) Adopt(ctx context.Context, ids ...ObjectID) (found []bool, err error) {
	f, err := c.m.call(ctx, storewire.TypeAdopt, idList(0, ids).Append(nil), nil)
	if err != nil {
		return nil, err
	}
	var r storewire.Codes
	if err := r.Decode(f.p); err != nil || len(r.Codes) != len(ids) {
		return nil, errors.New("adopt: malformed reply")
	}
	found = make([]bool, len(ids))
	for i, code := range r.Codes {
		found[i] = code == storewire.CodeOK
	}
	return found, nil
}

// Persist writes objects to the store's cold tier now, so that they
// survive the store's restart (and its death): each must be sealed in the
// store or already in its cold tier. It fails with ErrColdTier naming the
// first object the tier did not take, or ErrObjectNotFound /
// ErrObjectNotSealed per object; the store must have been started with a
// cold tier (-e).
func (c *Client) Persist(ctx context.Context, ids ...ObjectID) error {
	f, err := c.m.call(ctx, storewire.TypePersist, idList(0, ids).Append(nil), nil)
	if err != nil {
		return err
	}
	var r storewire.Codes
	if err := r.Decode(f.p); err != nil || len(r.Codes) != len(ids) {
		return errors.New("persist: malformed reply")
	}
	var errs []error
	for i, code := range r.Codes {
		errs = append(errs, codeError(code, ids[i], "persist"))
	}
	return errors.Join(errs...)
}

// Put stores data under its content address (ContentID) and returns the
// id. Putting bytes that are already stored succeeds. The BLAKE3 digest
// computed for the id is kept with the object.
//
// Data over inlineThreshold is hashed with its bao outboard, in the same
// one pass, and the store is handed the outboard after Seal: it need not
// hash the object again, and a peer copying it at once finds the outboard
// ready rather than waiting for the store to build it.
func (c *Client) Put(ctx context.Context, data, metadata []byte) (ObjectID, error) {
	var digest Digest
	var outboard []byte
	if len(data) <= inlineThreshold {
		digest = Digest(bao.Sum(data))
	} else {
		var root [32]byte
		outboard, root = bao.Build(data)
		digest = Digest(root)
	}
	id := ObjectID(digest[:IDSize])
	err := c.put(ctx, id, data, metadata, digest)
	if errors.Is(err, ErrObjectExists) {
		return id, nil // the store has it, outboard or not
	}
	if err == nil && outboard != nil {
		// Best effort: without it the store hashes the object itself.
		c.SetOutboard(ctx, id, outboard)
	}
	return id, err
}

// PutID stores data under id: one round trip for small objects, otherwise
// Create, a copy into shared memory, Seal and Release.
func (c *Client) PutID(ctx context.Context, id ObjectID, data, metadata []byte) error {
	return c.put(ctx, id, data, metadata, Digest{})
}

func (c *Client) put(ctx context.Context, id ObjectID, data, metadata []byte, digest Digest) error {
	if len(data) <= inlineThreshold {
		return c.createAndSeal(ctx, id, data, metadata, digest, false)
	}
	_, off, err := c.create(ctx, id, uint64(len(data)), metadata)
	if err != nil {
		return err
	}
	c.populated.Fill(off, data) // the view's range, checked by create
	seal := storewire.Seal{ID: id, HasDigest: !digest.IsZero(), Digest: digest}
	if _, err := c.m.call(ctx, storewire.TypeSeal, seal.Append(nil), nil); err != nil {
		c.Abort(context.Background(), id)
		return err
	}
	return c.Release(ctx, id)
}

// inlineThreshold is the size up to which PutID sends the data inside the
// request: below it one round trip costs less than mapping-side copying
// plus two more round trips.
const inlineThreshold = 64 << 10
