package s3import

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/store"
)

// ErrStoreUnavailable wraps a failure of the store's connection (as
// opposed to a request the store refused): the store is gone, and no
// later attempt can succeed on this connection.
var ErrStoreUnavailable = errors.New("the store is unavailable")

// Imported is one S3 object stored under its content address.
type Imported struct {
	ID     store.ObjectID `json:"id"`
	Hash   store.Digest   `json:"hash"`
	Bucket string         `json:"bucket"`
	Key    string         `json:"key"`
	Size   uint64         `json:"size"`
	ETag   string         `json:"etag"`
	// Existed: the store held these bytes already; nothing was written.
	Existed bool `json:"existed,omitempty"`
}

// URL is the object's s3:// address.
func (im *Imported) URL() string { return "s3://" + im.Bucket + "/" + im.Key }

// Import stores the S3 object bucket/key under its BLAKE3 content
// address. The id is known only once the bytes are hashed, so they go
// from the network into a scratch object in the store's shared memory,
// are hashed there as the outboard is built, and are then copied into
// the object named by their hash, sealed with digest and outboard; the
// scratch object is aborted (the store needs twice the object's size
// free for a moment). progress (nil: none) shows the bytes read.
func Import(ctx context.Context, st *store.Client, s3c *minio.Client, bucket, key string, progress *cliutil.Progress) (Imported, error) {
	im := Imported{Bucket: bucket, Key: key}
	obj, err := s3c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return im, fmt.Errorf("%s: %w", im.URL(), err)
	}
	defer obj.Close()
	info, err := obj.Stat()
	if err != nil {
		return im, fmt.Errorf("%s: %w", im.URL(), err)
	}
	// The ETag of the bytes read, which may be newer than a listing's.
	im.Size, im.ETag = uint64(info.Size), info.ETag
	if im.Size > st.Capacity() {
		return im, fmt.Errorf("%s has %d bytes, the store at %s holds at most %d: %w", im.URL(), im.Size, st.Socket(), st.Capacity(), store.ErrTooLarge)
	}
	scratch := store.RandomObjectID()
	buf, err := st.Create(ctx, scratch, im.Size, nil)
	if err != nil {
		return im, storeError(fmt.Sprintf("%s (%d bytes): create a scratch object", im.URL(), im.Size), err)
	}
	defer abort(st, scratch)
	if _, err := io.ReadFull(progress.Reader(obj, info.Size, im.URL()), buf); err != nil {
		if ctx.Err() != nil {
			return im, ctx.Err()
		}
		return im, fmt.Errorf("%s: read: %w", im.URL(), err)
	}
	outboard, root := bao.Build(buf)
	im.Hash = store.Digest(root)
	im.ID = store.ObjectID(im.Hash[:store.IDSize])
	dst, err := st.Create(ctx, im.ID, im.Size, nil)
	switch {
	case errors.Is(err, store.ErrObjectExists): // the same bytes are stored already
		im.Existed = true
		return im, nil
	case err != nil:
		return im, storeError(fmt.Sprintf("%s: create object %s", im.URL(), im.ID), err)
	}
	copy(dst, buf)
	// Sealing is not abandoned on SIGINT: the bytes are all there.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := st.SealDigest(sctx, im.ID, im.Hash); err != nil {
		abort(st, im.ID)
		return im, storeError(fmt.Sprintf("%s: seal object %s", im.URL(), im.ID), err)
	}
	if len(outboard) <= storewire.MaxOutboard {
		st.SetOutboard(sctx, im.ID, outboard) // else the store hashes it again when asked
	}
	if err := st.Release(sctx, im.ID); err != nil {
		return im, storeError(fmt.Sprintf("%s: release object %s", im.URL(), im.ID), err)
	}
	return im, nil
}

// abort drops an unsealed object (best effort: a broken connection
// drops it anyway).
func abort(st *store.Client, id store.ObjectID) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st.Abort(ctx, id)
}

// storeError wraps err with what was being done; a failure of the
// connection (not a refusal the store sent) also wraps
// ErrStoreUnavailable.
func storeError(what string, err error) error {
	var refused *store.Error
	if errors.As(err, &refused) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, ErrStoreUnavailable, err)
}
