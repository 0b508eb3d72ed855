package store

import (
	"crypto/rand"

	"lukechampine.com/blake3"

	"github.com/plasmastream/plasmastream/internal/wire"
)

// IDSize is the length of an object id in bytes.
const IDSize = wire.IDSize

// ObjectID names an object: 20 bytes, written as 40 lowercase hex digits
// (String, and as text in JSON). It is the one id type of every protocol.
type ObjectID = wire.ID

// Digest is the BLAKE3-256 digest of an object's data (the root of its
// bao tree); the zero Digest means unknown. It prints, and is JSON, as 64
// hex digits ("" when unknown).
type Digest = wire.Digest

// ParseObjectID parses 40 hex digits.
func ParseObjectID(s string) (ObjectID, error) { return wire.ParseID(s) }

// RandomObjectID returns a random id.
func RandomObjectID() ObjectID {
	var id ObjectID
	rand.Read(id[:])
	return id
}

// ContentID is the content address of data: the first 20 bytes of its
// BLAKE3 hash. The same bytes always get the same id.
func ContentID(data []byte) ObjectID {
	sum := blake3.Sum256(data)
	return ObjectID(sum[:IDSize])
}
