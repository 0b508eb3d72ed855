package wire

import (
	"encoding/hex"
	"fmt"
)

// The two values every protocol carries. Each has one Go type, here,
// which every package uses (store.ObjectID, storewire.ID, streamwire.ID
// and stream.ObjectID are aliases of ID; store.Digest of Digest): they
// stay binary in Go and become hex only when printed (JSON, CLI output,
// logs, etcd keys).

// Sizes of an object id and of a digest, in bytes.
const (
	IDSize     = 20
	DigestSize = 32
)

// ID names an object: 20 bytes, written as 40 lowercase hex digits.
type ID [IDSize]byte

// ParseID parses 40 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("object id %q: want %d hex digits, got %d", s, 2*IDSize, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("object id %q: %w", s, err)
	}
	return id, nil
}

// String is the id as 40 lowercase hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText writes the id as hex (JSON, logs).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses 40 hex digits.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	*id = v
	return err
}

// Digest is a BLAKE3-256 digest (of an object's data, the root of its bao
// tree). The zero Digest means "not known": it is written as the empty
// string, so a JSON field `json:"digest,omitzero"` is left out when the
// digest is unknown, and one without omitzero reads "". (A real digest of
// 32 zero bytes does not occur.) Wire messages that carry an optional
// digest keep their own has-digest flag, as their byte layout has one.
type Digest [DigestSize]byte

// ParseDigest parses 64 hex digits; the empty string is the zero
// (unknown) Digest.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if s == "" {
		return d, nil
	}
	if len(s) != 2*DigestSize {
		return d, fmt.Errorf("digest %q: want %d hex digits, got %d", s, 2*DigestSize, len(s))
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, fmt.Errorf("digest %q: %w", s, err)
	}
	return d, nil
}

// IsZero reports whether the digest is unknown.
func (d Digest) IsZero() bool { return d == Digest{} }

// String is the digest as 64 lowercase hex digits, or "" when unknown.
func (d Digest) String() string {
	if d.IsZero() {
		return ""
	}
	return hex.EncodeToString(d[:])
}

// MarshalText writes String (JSON, logs).
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses what MarshalText writes.
func (d *Digest) UnmarshalText(b []byte) error {
	v, err := ParseDigest(string(b))
	*d = v
	return err
}
