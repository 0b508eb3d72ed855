package storewire

import (
	"encoding/binary"
	"fmt"

	"github.com/plasmastream/plasmastream/internal/wire"
)

// Code is a result code carried by Error replies and per-object statuses.
type Code uint16

const (
	CodeOK              Code = 0
	CodeObjectExists    Code = 1
	CodeObjectNotFound  Code = 2
	CodeOutOfMemory     Code = 3
	CodeObjectNotSealed Code = 4
	CodeAlreadySealed   Code = 5
	CodeNotCreator      Code = 6
	CodeInvalidRequest  Code = 7
	CodeTooLarge        Code = 8
	CodeVersion         Code = 9
	CodeInternal        Code = 10
	CodeDeleteDeferred  Code = 11 // Delete status: in use, deleted at last release
	CodeNotReferenced   Code = 12 // Release of an object this client does not hold
	CodeBusy            Code = 13 // a store-wide limit (clients, blocked Gets' memory) is reached; retry later
	CodeColdTier        Code = 14 // the cold tier failed (unreachable, full, or holding corrupt bytes)
)

// ID is an object id (20 bytes on the wire).
type ID = wire.ID

// Hello opens every connection. The server answers with HelloReply and the
// arena file descriptor (SCM_RIGHTS) in the same sendmsg.
type Hello struct {
	Magic   [4]byte
	Version uint16
}

func (m Hello) Append(b []byte) []byte {
	e := Enc{B: b}
	e.Raw(m.Magic[:])
	e.U16(m.Version)
	return e.B
}

func (m *Hello) Decode(p []byte) error {
	d := NewDec(p)
	copy(m.Magic[:], d.Raw("magic", 4))
	m.Version = d.U16("version")
	return d.Done()
}

// HelloReply describes the arena the attached descriptor refers to.
type HelloReply struct {
	Version   uint16
	ArenaSize uint64 // bytes to map
	Capacity  uint64 // bytes usable for objects
}

func (m HelloReply) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U16(m.Version)
	e.U64(m.ArenaSize)
	e.U64(m.Capacity)
	return e.B
}

func (m *HelloReply) Decode(p []byte) error {
	d := NewDec(p)
	m.Version = d.U16("version")
	m.ArenaSize = d.U64("arena size")
	m.Capacity = d.U64("capacity")
	return d.Done()
}

// Create reserves an object; the reply tells where it lives in the arena.
type Create struct {
	ID       ID
	DataSize uint64
	Metadata []byte
}

func (m Create) Append(b []byte) []byte {
	e := Enc{B: b}
	e.ID(m.ID)
	e.U64(m.DataSize)
	e.Bytes32(m.Metadata)
	return e.B
}

func (m *Create) Decode(p []byte) error {
	d := NewDec(p)
	m.ID = d.ID("id")
	m.DataSize = d.U64("data size")
	m.Metadata = d.Bytes32("metadata", MaxMetadata)
	return d.Done()
}

// Location is where an object's bytes are: data at Offset, metadata right
// after the data.
type Location struct {
	Offset   uint64
	DataSize uint64
	MetaSize uint32
}

func (m Location) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U64(m.Offset)
	e.U64(m.DataSize)
	e.U32(m.MetaSize)
	return e.B
}

func (m *Location) read(d *Dec) {
	m.Offset = d.U64("offset")
	m.DataSize = d.U64("data size")
	m.MetaSize = d.U32("metadata size")
}

func (m *Location) Decode(p []byte) error {
	d := NewDec(p)
	m.read(d)
	return d.Done()
}

// CreateAndSeal creates, fills and seals a small object in one round trip,
// optionally with the BLAKE3 digest of its data. Its flags byte (once a
// has-digest boolean, so old clients still encode it right) carries
// HasDigest in bit 0 and Keep in bit 1; other bits are rejected.
type CreateAndSeal struct {
	ID        ID
	Data      []byte
	Metadata  []byte
	HasDigest bool
	Keep      bool // the creator keeps a reference, to Release, as after Create and Seal
	Digest    wire.Digest
}

// CreateAndSeal flags.
const (
	createAndSealDigest = 1 << iota
	createAndSealKeep
)

func (m CreateAndSeal) Append(b []byte) []byte {
	e := Enc{B: b}
	m.write(&e)
	return e.B
}

func (m *CreateAndSeal) write(e *Enc) {
	e.ID(m.ID)
	e.Bytes32(m.Data)
	e.Bytes32(m.Metadata)
	e.U8(b2u(m.HasDigest)*createAndSealDigest | b2u(m.Keep)*createAndSealKeep)
	e.Digest(m.Digest)
}

func (m *CreateAndSeal) Decode(p []byte) error {
	d := NewDec(p)
	flags := m.read(d)
	if err := d.Done(); err != nil {
		return err
	}
	return checkCreateAndSealFlags(flags)
}

// read decodes the fields and returns the raw flags byte for the caller
// to check once the whole payload has been read.
func (m *CreateAndSeal) read(d *Dec) uint8 {
	m.ID = d.ID("id")
	m.Data = d.Bytes32("data", MaxInlineData)
	m.Metadata = d.Bytes32("metadata", MaxMetadata)
	flags := d.U8("flags")
	m.HasDigest, m.Keep = flags&createAndSealDigest != 0, flags&createAndSealKeep != 0
	m.Digest = d.Digest("digest")
	return flags
}

func checkCreateAndSealFlags(flags uint8) error {
	if flags&^(createAndSealDigest|createAndSealKeep) != 0 {
		return fmt.Errorf("create-and-seal: unknown flags %#x", flags)
	}
	return nil
}

// ObjectRef names one object: Abort and Contains.
type ObjectRef struct{ ID ID }

func (m ObjectRef) Append(b []byte) []byte { return append(b, m.ID[:]...) }

func (m *ObjectRef) Decode(p []byte) error {
	d := NewDec(p)
	m.ID = d.ID("id")
	return d.Done()
}

// Seal makes an object immutable and visible. A client may supply the
// BLAKE3 digest of the data it wrote (HasDigest=1).
type Seal struct {
	ID        ID
	HasDigest bool
	Digest    wire.Digest
}

func (m Seal) Append(b []byte) []byte {
	e := Enc{B: b}
	e.ID(m.ID)
	e.U8(b2u(m.HasDigest))
	e.Digest(m.Digest)
	return e.B
}

func (m *Seal) Decode(p []byte) error {
	d := NewDec(p)
	m.ID = d.ID("id")
	m.HasDigest = d.U8("has digest") != 0
	m.Digest = d.Digest("digest")
	return d.Done()
}

// IDList is a list of ids: Release and Delete (with a timeout field that
// they ignore), and the head of a Get.
type IDList struct {
	TimeoutMs int64 // Get only: negative forever, 0 poll, N milliseconds
	IDs       []ID
}

func (m IDList) Append(b []byte) []byte {
	e := Enc{B: b}
	e.I64(m.TimeoutMs)
	e.U32(uint32(len(m.IDs)))
	for _, id := range m.IDs {
		e.ID(id)
	}
	return e.B
}

func (m *IDList) read(d *Dec) {
	m.TimeoutMs = d.I64("timeout")
	n := d.Count("id count", IDSize, MaxIDsPerRequest)
	m.IDs = make([]ID, n)
	for i := range m.IDs {
		m.IDs[i] = d.ID("id")
	}
}

func (m *IDList) Decode(p []byte) error {
	d := NewDec(p)
	m.read(d)
	return d.Done()
}

// Get flags.
const (
	// GetInternal marks a Get made on the store's behalf (a stream server
	// serving a copy, a verifier): it does not count as a use of the
	// objects, so they keep their place in the eviction order.
	GetInternal uint32 = 1 << 0

	getKnownFlags = GetInternal
)

// Get is an IDList followed by optional flags: a u32 that is present only
// when non-zero, so a Get without flags has the layout of IDList and
// clients that predate flags need no change. Unknown flag bits are
// rejected, so that a client never believes a store honours a flag it
// does not know.
type Get struct {
	IDList
	Flags uint32
}

func (m Get) Append(b []byte) []byte {
	b = m.IDList.Append(b)
	if m.Flags != 0 {
		e := Enc{B: b}
		e.U32(m.Flags)
		b = e.B
	}
	return b
}

func (m *Get) Decode(p []byte) error {
	m.Flags = 0
	head := len(p)
	if len(p) >= 12 {
		if n := uint64(binary.LittleEndian.Uint32(p[8:12])); 12+IDSize*n < uint64(len(p)) {
			head = int(12 + IDSize*n) // flags follow the ids
		}
	}
	if err := m.IDList.Decode(p[:head]); err != nil || head == len(p) {
		return err
	}
	d := NewDec(p[head:])
	m.Flags = d.U32("get flags")
	if err := d.Done(); err != nil {
		return err
	}
	switch {
	case m.Flags == 0:
		return fmt.Errorf("%w: get flags present but zero (omit them)", ErrMalformed)
	case m.Flags&^getKnownFlags != 0:
		return fmt.Errorf("%w: unknown get flags %#x (this store knows %#x)", ErrMalformed, m.Flags&^getKnownFlags, getKnownFlags)
	}
	return nil
}

// GetReply has one entry per requested id, in request order.
type GetReply struct{ Objects []GetResult }

// GetResult is a found object's location and digest (when the store knows
// it), or Found=false.
type GetResult struct {
	Found bool
	Location
	HasDigest bool
	Digest    wire.Digest
}

const getResultSize = 1 + 8 + 8 + 4 + 1 + DigestSize

func (m GetReply) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U32(uint32(len(m.Objects)))
	for _, o := range m.Objects {
		e.U8(b2u(o.Found))
		e.B = o.Location.Append(e.B)
		e.U8(b2u(o.HasDigest))
		e.Digest(o.Digest)
	}
	return e.B
}

func (m *GetReply) Decode(p []byte) error {
	d := NewDec(p)
	n := d.Count("object count", getResultSize, MaxIDsPerRequest)
	m.Objects = make([]GetResult, n)
	for i := range m.Objects {
		o := &m.Objects[i]
		o.Found = d.U8("found") != 0
		o.Location.read(d)
		o.HasDigest = d.U8("has digest") != 0
		o.Digest = d.Digest("digest")
	}
	return d.Done()
}

// Codes is a list of per-object result codes (Delete reply), or a single
// flag (Contains reply: one code, 1 = sealed and present).
type Codes struct{ Codes []Code }

func (m Codes) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U32(uint32(len(m.Codes)))
	for _, c := range m.Codes {
		e.U16(uint16(c))
	}
	return e.B
}

func (m *Codes) Decode(p []byte) error {
	d := NewDec(p)
	n := d.Count("code count", 2, MaxIDsPerRequest)
	m.Codes = make([]Code, n)
	for i := range m.Codes {
		m.Codes[i] = Code(d.U16("code"))
	}
	return d.Done()
}

// Number is a single u64: the Evict request (bytes wanted) and its reply
// (bytes freed).
type Number struct{ N uint64 }

func (m Number) Append(b []byte) []byte { e := Enc{B: b}; e.U64(m.N); return e.B }

func (m *Number) Decode(p []byte) error {
	d := NewDec(p)
	m.N = d.U64("number")
	return d.Done()
}

// ErrorReply answers a request that failed as a whole.
type ErrorReply struct {
	Code    Code
	Message string
}

func (m ErrorReply) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U16(uint16(m.Code))
	msg := m.Message
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	e.Bytes32([]byte(msg))
	return e.B
}

func (m *ErrorReply) Decode(p []byte) error {
	d := NewDec(p)
	m.Code = Code(d.U16("code"))
	m.Message = string(d.Bytes32("message", 4096))
	return d.Done()
}

func (m ErrorReply) Error() string { return fmt.Sprintf("%s (code %d)", m.Message, m.Code) }

// ColdTierReply names the store's cold tier: its URL without
// credentials (file:///dir, s3://bucket/prefix), "" without a tier.
type ColdTierReply struct {
	URL string
}

// MaxColdURL bounds a tier's URL on the wire.
const MaxColdURL = 4096

func (m ColdTierReply) Append(b []byte) []byte {
	e := Enc{B: b}
	e.Bytes32([]byte(m.URL))
	return e.B
}

func (m *ColdTierReply) Decode(p []byte) error {
	d := NewDec(p)
	m.URL = string(d.Bytes32("url", MaxColdURL))
	return d.Done()
}

func b2u(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}

// Outboard is the reply to an Outboard request (an ObjectRef): the
// object's BLAKE3 digest and its bao outboard with 16 KiB chunk groups,
// which the store builds once and keeps with the object.
type Outboard struct {
	Digest   wire.Digest
	Outboard []byte
}

func (m Outboard) Append(b []byte) []byte {
	e := Enc{B: b}
	e.Digest(m.Digest)
	e.Bytes32(m.Outboard)
	return e.B
}

func (m *Outboard) Decode(p []byte) error {
	d := NewDec(p)
	m.Digest = d.Digest("digest")
	m.Outboard = d.Bytes32("outboard", MaxOutboard)
	return d.Done()
}

// SetOutboard hands the store the outboard of a sealed object whose
// digest it knows (a receiver that verified the object against it); the
// store checks that the outboard hashes up to that digest.
type SetOutboard struct {
	ID       ID
	Outboard []byte
}

func (m SetOutboard) Append(b []byte) []byte {
	e := Enc{B: b}
	e.ID(m.ID)
	e.Bytes32(m.Outboard)
	return e.B
}

func (m *SetOutboard) Decode(p []byte) error {
	d := NewDec(p)
	m.ID = d.ID("id")
	m.Outboard = d.Bytes32("outboard", MaxOutboard)
	return d.Done()
}
