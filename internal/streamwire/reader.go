package streamwire

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/plasmastream/plasmastream/internal/wire"
)

// LimitError is a request that breaks a protocol limit, found while its
// payload was still arriving (ReadSync, ReadCopy): Status says which limit.
type LimitError struct {
	Status  Status
	Message string
}

func (e *LimitError) Error() string { return e.Message }

// ReadSync decodes a SYNC payload of length bytes as it arrives from r,
// without buffering it: memory grows with the ids actually received, and
// the limits on counts (1024 peer requests, 65,536 objects per peer
// request) are checked as soon as a count arrives, before its ids. It
// accepts exactly what Sync.Decode accepts within those limits; an error
// is a *LimitError, a wire.ErrMalformed or r's error (io.ErrUnexpectedEOF
// for a payload cut short).
func ReadSync(r io.Reader, length uint32) (*Sync, error) {
	d := streamDec{r: r, left: int64(length)}
	n := d.count("peer request count", 9)
	if n > MaxPeerRequests {
		return nil, &LimitError{StatusTooManyPeerRequests, fmt.Sprintf("SYNC has %d peer requests; at most %d are allowed", n, MaxPeerRequests)}
	}
	m := &Sync{Peers: make([]PeerRequest, 0, n)}
	for i := 0; i < n && d.err == nil; i++ {
		var pr PeerRequest
		pr.Kind = Kind(d.u8("kind"))
		pr.Addr = string(d.bytes32("peer address", MaxAddrLen))
		pr.IDs = d.ids(fmt.Sprintf("peer request %d", i+1))
		m.Peers = append(m.Peers, pr)
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return m, nil
}

// ReadCopy decodes a COPY, TAKE, RELAY or DELETE payload as ReadSync does.
func ReadCopy(r io.Reader, length uint32) (*Copy, error) {
	d := streamDec{r: r, left: int64(length)}
	m := &Copy{IDs: d.ids("request")}
	if err := d.done(); err != nil {
		return nil, err
	}
	return m, nil
}

// streamDec reads fields from r, never past left bytes; the first error
// sticks.
type streamDec struct {
	r    io.Reader
	left int64
	err  error
	b    [8]byte
}

func (d *streamDec) take(what string, p []byte) {
	if d.err != nil {
		return
	}
	if int64(len(p)) > d.left {
		d.err = fmt.Errorf("%w: %s needs %d bytes, %d remain", wire.ErrMalformed, what, len(p), d.left)
		return
	}
	if _, err := io.ReadFull(d.r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		d.err = err
		return
	}
	d.left -= int64(len(p))
}

func (d *streamDec) u8(what string) uint8 {
	d.take(what, d.b[:1])
	return d.b[0]
}

func (d *streamDec) u32(what string) uint32 {
	d.take(what, d.b[:4])
	if d.err != nil {
		return 0
	}
	return uint32(d.b[0]) | uint32(d.b[1])<<8 | uint32(d.b[2])<<16 | uint32(d.b[3])<<24
}

// count reads a u32 count of elements of at least elem bytes each, which
// must fit in what remains.
func (d *streamDec) count(what string, elem int) int {
	n := d.u32(what)
	if d.err == nil && int64(n)*int64(elem) > d.left {
		d.err = fmt.Errorf("%w: %s %d needs %d bytes, %d remain", wire.ErrMalformed, what, n, int64(n)*int64(elem), d.left)
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

func (d *streamDec) bytes32(what string, max uint32) []byte {
	n := d.u32(what + " length")
	if d.err == nil && n > max {
		d.err = fmt.Errorf("%w: %s of %d bytes, at most %d", wire.ErrMalformed, what, n, max)
	}
	if d.err != nil {
		return nil
	}
	p := make([]byte, n)
	d.take(what, p)
	return p
}

// ids reads an object count and the ids. The count is checked against the
// limit first; the slice is then sized exactly (at most 1.25 MiB, and no
// more than the bytes the frame still announces).
func (d *streamDec) ids(where string) []ID {
	n := d.count("object count", IDSize)
	if n > MaxObjectsPerPeerRequest {
		d.err = &LimitError{StatusTooManyObjects, fmt.Sprintf("%s: %d objects requested; at most %d are allowed", where, n, MaxObjectsPerPeerRequest)}
	}
	if d.err != nil {
		return nil
	}
	ids := make([]ID, n)
	for i := range ids {
		d.take("object id", ids[i][:])
	}
	return ids
}

func (d *streamDec) done() error {
	if d.err == nil && d.left != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", wire.ErrMalformed, d.left)
	}
	return d.err
}

// IsLimit reports whether err is a *LimitError, and returns it.
func IsLimit(err error) (*LimitError, bool) {
	var le *LimitError
	ok := errors.As(err, &le)
	return le, ok
}

// duplicateAt finds the earliest position, in request order, of an id that
// appeared before it across lists (-1 if none). It sorts one index of
// 24 bytes per id rather than building a map, so that a large SYNC costs
// about its own size again to check, exactly.
func duplicateAt(lists [][]ID) int {
	type entry struct {
		id  ID
		pos uint32
	}
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	all := make([]entry, 0, total)
	for _, l := range lists {
		for _, id := range l {
			all = append(all, entry{id, uint32(len(all))})
		}
	}
	slices.SortFunc(all, func(a, b entry) int {
		// The first 8 bytes decide almost every comparison of ids (random
		// or content addresses) in one integer compare.
		if c := cmp.Compare(binary.BigEndian.Uint64(a.id[:8]), binary.BigEndian.Uint64(b.id[:8])); c != 0 {
			return c
		}
		if c := bytes.Compare(a.id[8:], b.id[8:]); c != 0 {
			return c
		}
		return cmp.Compare(a.pos, b.pos)
	})
	first := -1
	for i := 1; i < len(all); i++ {
		if all[i].id == all[i-1].id && (first < 0 || int(all[i].pos) < first) {
			first = int(all[i].pos)
		}
	}
	return first
}
