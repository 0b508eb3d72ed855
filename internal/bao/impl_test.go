package bao

import (
	"math/rand/v2"
	"testing"

	zeebo "github.com/zeebo/blake3"
	"lukechampine.com/blake3"
)

// choices are the root choices of every kind of CPU, whatever this one is.
var choices = map[string]rootChoice{
	"avx512 amd": chooseRoot(true, true, false), "avx2 amd": chooseRoot(false, true, false),
	"avx512 intel": chooseRoot(true, true, true), "avx2 intel": chooseRoot(false, true, true),
	"neither": chooseRoot(false, false, false),
}

// agree checks that for data both implementations, every CPU's choice,
// Sum and Build give one root, and that the outboard Build makes with
// guts verifies against zeebo's root, group by group.
func agree(t *testing.T, data []byte) {
	t.Helper()
	want := blake3.Sum256(data)
	if got := zeebo.Sum256(data); got != want {
		t.Fatalf("%d bytes: zeebo %x, lukechampine %x", len(data), got, want)
	}
	if len(data) <= SegmentSize {
		if got := gutsRoot(data); got != want {
			t.Fatalf("%d bytes: gutsRoot %x, want %x", len(data), got, want)
		}
		for name, c := range choices {
			if got := c.root(data); got != want {
				t.Fatalf("%d bytes, %s: root %x, want %x", len(data), name, got, want)
			}
		}
	}
	if got := Sum(data); got != want {
		t.Fatalf("%d bytes: Sum %x, want %x", len(data), got, want)
	}
	outboard, root := Build(data)
	if root != want {
		t.Fatalf("%d bytes: Build root %x, want %x", len(data), root, want)
	}
	tree, err := Parse(outboard, uint64(len(data)), zeebo.Sum256(data))
	if err != nil {
		t.Fatalf("%d bytes: the outboard does not match zeebo's root: %v", len(data), err)
	}
	for i := range tree.Groups() {
		off, n := tree.Span(i)
		if !tree.VerifyGroup(i, data[off:off+n]) {
			t.Fatalf("%d bytes: group %d fails against zeebo's root", len(data), i)
		}
	}
}

// Sizes around every boundary of both implementations (a chunk, zeebo's
// 8 KiB batches, a 16 KiB group, the choice's limits, a segment) and
// random ones.
func TestRootImplementationsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sizes := []int{0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 4095, 4096, 4097, 8191, 8192, 8193, 12 << 10,
		16<<10 - 1, 16 << 10, 16<<10 + 1, 64 << 10, SegmentSize - 1, SegmentSize, SegmentSize + 1, 3*SegmentSize + 5}
	for range 30 {
		sizes = append(sizes, rng.IntN(2*SegmentSize))
	}
	for _, n := range sizes {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		agree(t, data)
	}
}

func FuzzRootImplementations(f *testing.F) {
	for _, n := range []int{0, 1, 1025, 4096, 8193, 16<<10 + 7, 40 << 10} {
		f.Add(make([]byte, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) { agree(t, data) })
}
