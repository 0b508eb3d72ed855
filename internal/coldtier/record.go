package coldtier

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/plasmastream/plasmastream/internal/wire"
)

// Record is what the tier knows of one object besides its bytes: the
// object's id in the store, the BLAKE3 digest its blob is keyed by, and
// what a Get returns beside the data.
type Record struct {
	ID        wire.ID
	Digest    wire.Digest
	DataSize  uint64
	Metadata  []byte
	CreatedNs int64 // when the object was first sealed (unix ns)
	// Persisted: written on request (put --persist, plasma persist), not
	// only because memory ran out.
	Persisted bool
}

// MaxMetadata is the metadata a record may carry: the store's own limit.
const MaxMetadata = 64 << 10

const (
	recordMagic     = "PLCT"
	recordVersion   = 1
	recordPersisted = 1 << 0
	// recordHeader: magic, version, flags, id, digest, data size,
	// created, metadata length.
	recordHeader = 4 + 1 + 1 + wire.IDSize + 32 + 8 + 8 + 4
)

// ErrBadRecord is wrapped by every error UnmarshalRecord returns.
var ErrBadRecord = errors.New("bad cold-tier record")

// Marshal encodes r: a fixed header, then the metadata.
func (r Record) Marshal() []byte {
	b := make([]byte, 0, recordHeader+len(r.Metadata))
	b = append(b, recordMagic...)
	var flags byte
	if r.Persisted {
		flags |= recordPersisted
	}
	b = append(b, recordVersion, flags)
	b = append(b, r.ID[:]...)
	b = append(b, r.Digest[:]...)
	b = binary.LittleEndian.AppendUint64(b, r.DataSize)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.CreatedNs))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Metadata)))
	return append(b, r.Metadata...)
}

// UnmarshalRecord decodes a record read from the tier. Anything but the
// exact layout Marshal writes is an error: a record is the tier's word on
// which bytes an object is, so a damaged one is refused, not guessed at.
func UnmarshalRecord(b []byte) (Record, error) {
	var r Record
	if len(b) < recordHeader {
		return r, fmt.Errorf("%w: %d bytes, want at least %d", ErrBadRecord, len(b), recordHeader)
	}
	if string(b[:4]) != recordMagic {
		return r, fmt.Errorf("%w: magic %q, want %q", ErrBadRecord, b[:4], recordMagic)
	}
	if b[4] != recordVersion {
		return r, fmt.Errorf("%w: version %d; this store reads version %d", ErrBadRecord, b[4], recordVersion)
	}
	if b[5]&^recordPersisted != 0 {
		return r, fmt.Errorf("%w: unknown flags %#x", ErrBadRecord, b[5])
	}
	r.Persisted = b[5]&recordPersisted != 0
	p := b[6:]
	copy(r.ID[:], p)
	p = p[wire.IDSize:]
	copy(r.Digest[:], p)
	p = p[32:]
	r.DataSize = binary.LittleEndian.Uint64(p)
	r.CreatedNs = int64(binary.LittleEndian.Uint64(p[8:]))
	n := binary.LittleEndian.Uint32(p[16:])
	p = p[20:]
	if n > MaxMetadata {
		return r, fmt.Errorf("%w: %d bytes of metadata, at most %d allowed", ErrBadRecord, n, MaxMetadata)
	}
	if uint64(len(p)) != uint64(n) {
		return r, fmt.Errorf("%w: %d bytes of metadata announced, %d present", ErrBadRecord, n, len(p))
	}
	if n > 0 {
		r.Metadata = append([]byte(nil), p...)
	}
	return r, nil
}
