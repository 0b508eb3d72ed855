package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"lukechampine.com/blake3"
)

// IDSize is the length of an object id in bytes.
const IDSize = 20

// ObjectID names an object: 20 bytes, written as 40 lowercase hex digits.
type ObjectID [IDSize]byte

// ParseObjectID parses 40 hex digits.
func ParseObjectID(s string) (ObjectID, error) {
	var id ObjectID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("object id %q: want %d hex digits, got %d", s, 2*IDSize, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("object id %q: %w", s, err)
	}
	return id, nil
}

// String is the id as 40 lowercase hex digits.
func (id ObjectID) String() string { return hex.EncodeToString(id[:]) }

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
	var id ObjectID
	copy(id[:], sum[:IDSize])
	return id
}
