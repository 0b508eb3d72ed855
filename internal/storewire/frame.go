package storewire

import (
	"fmt"

	"github.com/plasmastream/plasmastream/internal/wire"
)

// Protocol constants. Version is bumped on any incompatible layout change;
// the Hello exchange rejects a mismatch with a clear error.
const (
	Magic   = "PLSM"
	Version = 1

	HeaderSize = wire.HeaderSize

	// MaxRequestPayload bounds what a client may send in one frame. The
	// largest legitimate request is a SetOutboard of MaxOutboard bytes.
	MaxRequestPayload = 64 << 20
	// MaxReplyPayload bounds what the server sends in one frame (a List of
	// a very full store is paged by the server into several frames).
	MaxReplyPayload = 64 << 20

	MaxMetadata      = 64 << 10 // metadata of one object, inclusive
	MaxInlineData    = 4 << 20  // data carried inside a CreateAndSeal frame
	MaxIDsPerRequest = 65536
	// MaxOutboard bounds a bao outboard (64 bytes per 16 KiB group): the
	// store keeps outboards of objects up to 16 GiB.
	MaxOutboard = MaxReplyPayload - 1024
	IDSize      = wire.IDSize
	DigestSize  = wire.DigestSize
)

// Type identifies a message. A reply has the type of its request with
// ReplyBit set; an error reply of any request is TypeError.
type Type uint16

const (
	TypeHello         Type = 1
	TypeCreate        Type = 2
	TypeCreateAndSeal Type = 3
	TypeSeal          Type = 4
	TypeAbort         Type = 5
	TypeGet           Type = 6
	TypeRelease       Type = 7
	TypeContains      Type = 8
	TypeDelete        Type = 9
	TypeList          Type = 10
	TypeEvict         Type = 11
	TypeSubscribe     Type = 12
	TypeEvent         Type = 13
	TypeStats         Type = 14
	TypeOutboard      Type = 15
	TypeSetOutboard   Type = 16
	TypePersist       Type = 17
	// TypeCreateAndSealBatch is many CreateAndSeals in one frame.
	TypeCreateAndSealBatch Type = 18
	// TypeColdTier asks for the URL of the store's cold tier.
	TypeColdTier Type = 19
	// TypeAdopt has the store read records of its cold tier by id (objects
	// another store wrote there), so that a Get restores them.
	TypeAdopt Type = 20

	ReplyBit  Type = 0x8000
	TypeError Type = 0xFFFF
)

var typeNames = map[Type]string{
	TypeHello: "Hello", TypeCreate: "Create", TypeCreateAndSeal: "CreateAndSeal",
	TypeSeal: "Seal", TypeAbort: "Abort", TypeGet: "Get", TypeRelease: "Release",
	TypeContains: "Contains", TypeDelete: "Delete", TypeList: "List",
	TypeEvict: "Evict", TypeSubscribe: "Subscribe", TypeEvent: "Event",
	TypeStats: "Stats", TypeOutboard: "Outboard", TypeSetOutboard: "SetOutboard", TypePersist: "Persist", TypeCreateAndSealBatch: "CreateAndSealBatch",
	TypeColdTier: "ColdTier", TypeAdopt: "Adopt", TypeError: "Error",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	if n, ok := typeNames[t&^ReplyBit]; ok && t&ReplyBit != 0 {
		return n + "Reply"
	}
	return fmt.Sprintf("Type(%d)", uint16(t))
}

// The frame layout and field codecs are package wire's.
type (
	Header = wire.Header
	Enc    = wire.Enc
	Dec    = wire.Dec
)

var (
	NewDec           = wire.NewDec
	ParseHeader      = wire.ParseHeader
	PutHeader        = wire.PutHeader
	ReadFrame        = wire.ReadFrame
	ErrMalformed     = wire.ErrMalformed
	ErrFrameTooLarge = wire.ErrFrameTooLarge
)

// AppendFrame appends a frame of type t carrying payload to dst.
func AppendFrame(dst []byte, t Type, reqID uint32, payload []byte) []byte {
	return wire.AppendFrame(dst, uint16(t), reqID, payload)
}
