package bao

import (
	"bytes"
	"errors"
	"testing"

	"lukechampine.com/blake3/bao"
)

// FuzzParse feeds Parse arbitrary outboards, sizes and roots. It must never
// panic, and whatever it accepts for a prefix of a fixed buffer must agree
// with the library's own per-group check (bao.VerifyChunk), and every group
// verifies exactly when the root is the real one, in which case the
// outboard is the real one too.
func FuzzParse(f *testing.F) {
	data := testData(5*GroupSize + 123)
	for _, n := range []int{0, 1, 1025, GroupSize, GroupSize + 1, 3 * GroupSize, len(data)} {
		outboard, root := Build(data[:n])
		f.Add(outboard, uint64(n), root[:])
	}
	f.Add([]byte{}, uint64(0), []byte{})
	f.Add(make([]byte, 8), ^uint64(0), make([]byte, 32))
	f.Fuzz(func(t *testing.T, outboard []byte, size uint64, rootBytes []byte) {
		var root [32]byte
		copy(root[:], rootBytes)
		tr, err := Parse(outboard, size, root)
		if err != nil {
			if !errors.Is(err, ErrBadOutboard) {
				t.Fatalf("error %v does not wrap ErrBadOutboard", err)
			}
			return
		}
		if tr.Groups() != Groups(size) || len(outboard) != OutboardSize(size) {
			t.Fatalf("accepted %d bytes for size %d", len(outboard), size)
		}
		if size > uint64(len(data)) {
			return
		}
		d := data[:size]
		want, wantRoot := Build(d)
		all := true
		for i := range tr.Groups() {
			off, n := tr.Span(i)
			ok := tr.VerifyGroup(i, d[off:off+n])
			// The library's VerifyChunk rejects every empty object.
			if size > 0 && ok != bao.VerifyChunk(d[off:off+n], outboard, Group, off, root) {
				t.Fatalf("size %d group %d: VerifyGroup %v, library disagrees", size, i, ok)
			}
			all = all && ok
		}
		if all != (root == wantRoot) {
			t.Fatalf("size %d: all groups verify %v, root is real %v", size, all, root == wantRoot)
		}
		if root == wantRoot && !bytes.Equal(outboard, want) {
			t.Fatalf("size %d: real root accepted with a different outboard", size)
		}
	})
}
