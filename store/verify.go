package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
)

// ErrIntegrity is an object whose bytes no longer match its BLAKE3
// digest: every client of a store maps the whole arena writable, so any of
// them can overwrite sealed objects (see GetVerified).
var ErrIntegrity = errors.New("integrity check failed")

// GetVerified is GetOne that checks the object's data against its BLAKE3
// digest before returning it, and fails with ErrIntegrity (holding no
// reference) when they differ. The digest is the one the store keeps: the
// one given at Seal, or, for an object sealed without one, what the
// store's hasher computed after Seal (asked for now with Outboard if it
// has not yet run; bytes overwritten before that are not detected).
//
// Why: every client of a store maps its whole arena writable, so a
// faulty or hostile local client can change another object's sealed
// bytes; Get returns them as they are now.
func (c *Client) GetVerified(ctx context.Context, id ObjectID, timeout time.Duration, opts ...GetOption) (*Object, error) {
	obj, err := c.GetOne(ctx, id, timeout, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Verify(ctx, obj); err != nil {
		c.Release(ctx, id)
		return nil, err
	}
	return obj, nil
}

// Verify checks a sealed object this client got against its BLAKE3
// digest, asking the store for the digest (Outboard, which hashes the
// object if need be) when the Get reply had none; a mismatch is
// ErrIntegrity, naming the object.
func (c *Client) Verify(ctx context.Context, obj *Object) error {
	if obj.Digest.IsZero() {
		d, _, err := c.Outboard(ctx, obj.ID)
		if err != nil {
			return fmt.Errorf("verify object %s: its digest: %w", obj.ID, err)
		}
		obj.Digest = d
	}
	if sum := Digest(bao.Sum(obj.Data)); sum != obj.Digest {
		return fmt.Errorf("%w: object %s in store %s does not match its BLAKE3 digest %s (its data hashes to %s): its bytes were changed in shared memory after Seal, which any client of the store can do",
			ErrIntegrity, obj.ID, c.socket, obj.Digest, sum)
	}
	return nil
}
