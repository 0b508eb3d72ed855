package streamwire

import (
	"testing"

	"github.com/plasmastream/plasmastream/internal/bao"
)

// Sizes and offsets past 4 GiB survive the wire: every one is 64 bits,
// and the outboard of such an object fits a RANGE reply. (plasma bench
// stream --huge moves a real 5 GiB object.)
func TestOver4GiB(t *testing.T) {
	const size = 5<<30 + 12345
	h := ObjectHeader{Index: 1, Status: StatusOK, DataSize: size, MetaSize: 9, OutboardSize: uint32(bao.OutboardSize(size))}
	var h2 ObjectHeader
	if err := h2.Decode(h.Append(nil)); err != nil || h2 != h {
		t.Fatalf("object header %+v came back as %+v (%v)", h, h2, err)
	}
	r := Range{Offset: size - size%(16<<10), Length: size % (16 << 10), Header: true}
	var r2 Range
	if err := r2.Decode(r.Append(nil)); err != nil || r2 != r {
		t.Fatalf("range %+v came back as %+v (%v)", r, r2, err)
	}
	if n := bao.OutboardSize(size); n > MaxOutboardSize || uint64(n) < 64*(size>>14) {
		t.Fatalf("outboard of %d bytes: %d bytes (limit %d)", uint64(size), n, MaxOutboardSize)
	}
}
