package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderSize is the size of a frame header.
const HeaderSize = 12

// Header is the fixed part of every frame.
//
//	0  u32 payload length
//	4  u16 type
//	6  u16 flags (must be 0)
//	8  u32 request id (0 for pushed messages)
type Header struct {
	Length uint32
	Type   uint16
	Flags  uint16
	ReqID  uint32
}

// ErrFrameTooLarge is returned when a frame announces more payload than the
// reader accepts.
var ErrFrameTooLarge = errors.New("frame payload exceeds limit")

// PutHeader writes h into b[:HeaderSize].
func PutHeader(b []byte, h Header) {
	binary.LittleEndian.PutUint32(b[0:], h.Length)
	binary.LittleEndian.PutUint16(b[4:], h.Type)
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
		Type:   binary.LittleEndian.Uint16(b[4:]),
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
func AppendFrame(dst []byte, t uint16, reqID uint32, payload []byte) []byte {
	var hb [HeaderSize]byte
	PutHeader(hb[:], Header{Length: uint32(len(payload)), Type: t, ReqID: reqID})
	dst = append(dst, hb[:]...)
	return append(dst, payload...)
}

// ReadFrame reads one frame from r into buf (grown as needed) and returns
// the header, the payload (aliasing the returned buffer) and the buffer.
// A buffer it has to make is of the frame's exact size: a caller that
// keeps each payload (nil buf) allocates only what it keeps, and one that
// passes the buffer back reuses it for every frame no larger.
func ReadFrame(r io.Reader, buf []byte, max uint32) (Header, []byte, []byte, error) {
	if cap(buf) < HeaderSize {
		buf = make([]byte, 0, HeaderSize)
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
