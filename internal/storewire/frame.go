package storewire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Protocol constants. Version is bumped on any incompatible layout change;
// the Hello exchange rejects a mismatch with a clear error.
const (
	Magic   = "PLSM"
	Version = 1

	HeaderSize = 12

	// MaxRequestPayload bounds what a client may send in one frame. The
	// largest legitimate request is a Get or Delete of MaxIDsPerRequest ids
	// or a CreateAndSeal of MaxInlineData plus MaxMetadata.
	MaxRequestPayload = 8 << 20
	// MaxReplyPayload bounds what the server sends in one frame (a List of
	// a very full store is paged by the server into several frames).
	MaxReplyPayload = 64 << 20

	MaxMetadata      = 64 << 10 // metadata of one object, inclusive
	MaxInlineData    = 4 << 20  // data carried inside a CreateAndSeal frame
	MaxIDsPerRequest = 65536
	IDSize           = 20
	DigestSize       = 32
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

	ReplyBit  Type = 0x8000
	TypeError Type = 0xFFFF
)

var typeNames = map[Type]string{
	TypeHello: "Hello", TypeCreate: "Create", TypeCreateAndSeal: "CreateAndSeal",
	TypeSeal: "Seal", TypeAbort: "Abort", TypeGet: "Get", TypeRelease: "Release",
	TypeContains: "Contains", TypeDelete: "Delete", TypeList: "List",
	TypeEvict: "Evict", TypeSubscribe: "Subscribe", TypeEvent: "Event",
	TypeStats: "Stats", TypeError: "Error",
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

// Header is the fixed part of every frame.
//
//	0  u32 payload length
//	4  u16 type
//	6  u16 flags (must be 0)
//	8  u32 request id (0 for pushed events)
type Header struct {
	Length uint32
	Type   Type
	Flags  uint16
	ReqID  uint32
}

// ErrFrameTooLarge is returned when a frame announces more payload than the
// reader accepts.
var ErrFrameTooLarge = errors.New("frame payload exceeds limit")

// PutHeader writes h into b[:HeaderSize].
func PutHeader(b []byte, h Header) {
	binary.LittleEndian.PutUint32(b[0:], h.Length)
	binary.LittleEndian.PutUint16(b[4:], uint16(h.Type))
	binary.LittleEndian.PutUint16(b[6:], h.Flags)
	binary.LittleEndian.PutUint32(b[8:], h.ReqID)
}

// ParseHeader decodes a header and checks it against max payload.
func ParseHeader(b []byte, max uint32) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, io.ErrUnexpectedEOF
	}
	h := Header{
		Length: binary.LittleEndian.Uint32(b[0:]),
		Type:   Type(binary.LittleEndian.Uint16(b[4:])),
		Flags:  binary.LittleEndian.Uint16(b[6:]),
		ReqID:  binary.LittleEndian.Uint32(b[8:]),
	}
	if h.Flags != 0 {
		return h, fmt.Errorf("frame flags %#x: must be 0", h.Flags)
	}
	if h.Length > max {
		return h, fmt.Errorf("%w: %d bytes announced, %d allowed", ErrFrameTooLarge, h.Length, max)
	}
	return h, nil
}

// AppendFrame appends a frame carrying payload to dst.
func AppendFrame(dst []byte, t Type, reqID uint32, payload []byte) []byte {
	var hb [HeaderSize]byte
	PutHeader(hb[:], Header{Length: uint32(len(payload)), Type: t, ReqID: reqID})
	dst = append(dst, hb[:]...)
	return append(dst, payload...)
}

// ReadFrame reads one frame from r into buf (grown as needed) and returns
// the header and the payload, which aliases buf.
func ReadFrame(r io.Reader, buf []byte, max uint32) (Header, []byte, []byte, error) {
	if cap(buf) < HeaderSize {
		buf = make([]byte, 0, 4096)
	}
	hb := buf[:HeaderSize]
	if _, err := io.ReadFull(r, hb); err != nil {
		return Header{}, nil, buf, err
	}
	h, err := ParseHeader(hb, max)
	if err != nil {
		return h, nil, buf, err
	}
	if cap(buf) < int(h.Length) {
		buf = make([]byte, 0, h.Length)
	}
	p := buf[:h.Length]
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, buf, err
	}
	return h, p, buf, nil
}
