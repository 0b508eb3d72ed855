package storewire

import (
	"testing"

	"github.com/plasmastream/plasmastream/internal/bao"
)

// Offsets and sizes past 4 GiB survive Create and its Location reply, and
// the outboard of a 5 GiB object fits a reply.
func TestOver4GiB(t *testing.T) {
	const size = 5<<30 + 12345
	c := Create{DataSize: size, Metadata: []byte("m")}
	var c2 Create
	if err := c2.Decode(c.Append(nil)); err != nil || c2.DataSize != size {
		t.Fatalf("create of %d bytes came back as %d (%v)", uint64(size), c2.DataSize, err)
	}
	l := Location{Offset: 6<<30 + 64, DataSize: size, MetaSize: 1}
	var l2 Location
	if err := l2.Decode(l.Append(nil)); err != nil || l2 != l {
		t.Fatalf("location %+v came back as %+v (%v)", l, l2, err)
	}
	if n := bao.OutboardSize(size); n > MaxOutboard {
		t.Fatalf("outboard of a %d-byte object: %d bytes, over %d", uint64(size), n, MaxOutboard)
	}
}
