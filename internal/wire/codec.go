package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed message")

// Enc appends little-endian fields to a byte slice.
type Enc struct{ B []byte }

func (e *Enc) U8(v uint8)      { e.B = append(e.B, v) }
func (e *Enc) U16(v uint16)    { e.B = binary.LittleEndian.AppendUint16(e.B, v) }
func (e *Enc) U32(v uint32)    { e.B = binary.LittleEndian.AppendUint32(e.B, v) }
func (e *Enc) U64(v uint64)    { e.B = binary.LittleEndian.AppendUint64(e.B, v) }
func (e *Enc) I64(v int64)     { e.U64(uint64(v)) }
func (e *Enc) Raw(p []byte)    { e.B = append(e.B, p...) }
func (e *Enc) ID(id ID)        { e.B = append(e.B, id[:]...) }
func (e *Enc) Digest(d Digest) { e.B = append(e.B, d[:]...) }

// Bytes32 writes a u32 length followed by p.
func (e *Enc) Bytes32(p []byte) { e.U32(uint32(len(p))); e.Raw(p) }

// Dec reads little-endian fields with bounds checks. The first failure is
// sticky: later reads return zero values and Err reports the failure, so a
// message decoder can read every field and check once at the end.
type Dec struct {
	b   []byte
	off int
	err error
}

func NewDec(b []byte) *Dec { return &Dec{b: b} }

func (d *Dec) fail(what string, n int) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s needs %d bytes at offset %d, %d remain", ErrMalformed, what, n, d.off, len(d.b)-d.off)
	}
}

func (d *Dec) take(what string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b)-d.off < n {
		d.fail(what, n)
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *Dec) U8(what string) uint8 {
	if p := d.take(what, 1); p != nil {
		return p[0]
	}
	return 0
}

func (d *Dec) U16(what string) uint16 {
	if p := d.take(what, 2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (d *Dec) U32(what string) uint32 {
	if p := d.take(what, 4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *Dec) U64(what string) uint64 {
	if p := d.take(what, 8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (d *Dec) I64(what string) int64 { return int64(d.U64(what)) }

func (d *Dec) ID(what string) (id ID) {
	if p := d.take(what, IDSize); p != nil {
		copy(id[:], p)
	}
	return id
}

func (d *Dec) Digest(what string) (v Digest) {
	if p := d.take(what, DigestSize); p != nil {
		copy(v[:], p)
	}
	return v
}

// Raw returns the next n bytes, aliasing the input.
func (d *Dec) Raw(what string, n int) []byte { return d.take(what, n) }

// Bytes32 reads a u32 length and that many bytes (aliasing the input),
// rejecting lengths above max.
func (d *Dec) Bytes32(what string, max uint32) []byte {
	n := d.U32(what + " length")
	if d.err == nil && n > max {
		d.err = fmt.Errorf("%w: %s length %d exceeds %d", ErrMalformed, what, n, max)
		return nil
	}
	return d.take(what, int(n))
}

// Count reads a u32 element count and checks that count elements of elem
// bytes each can still be present, before the caller allocates for them.
func (d *Dec) Count(what string, elem int, max uint32) int {
	n := d.U32(what)
	if d.err != nil {
		return 0
	}
	if n > max {
		d.err = fmt.Errorf("%w: %s %d exceeds %d", ErrMalformed, what, n, max)
		return 0
	}
	if uint64(n)*uint64(elem) > uint64(len(d.b)-d.off) {
		d.fail(what, int(n)*elem)
		return 0
	}
	return int(n)
}

// Left is the number of bytes not read yet.
func (d *Dec) Left() int { return len(d.b) - d.off }

// Done reports the first error, or an error if bytes remain unread: a
// message with trailing garbage is as malformed as a short one.
func (d *Dec) Done() error {
	if d.err != nil {
		return d.err
	}
	if d.off != len(d.b) {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b)-d.off)
	}
	return nil
}
