package bao

import (
	"math/rand/v2"
	"testing"

	"lukechampine.com/blake3"
)

// Every size class, including exact segment multiples, partial chunks and
// tails of one chunk, gives blake3.Sum256's digest.
func TestSumMatchesBLAKE3(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 1023, 1024, 1025, 4096, 16 << 10, 16<<10 + 1, 32<<10 + 5, 100 << 10, SegmentSize - 1, SegmentSize, SegmentSize + 1,
		SegmentSize + 1024, 2 * SegmentSize, 2*SegmentSize + 5, 3 * SegmentSize, 3*SegmentSize + 1023*1024 + 7,
		4 * SegmentSize, 5*SegmentSize + 3*1024, 8*SegmentSize - 1, 8*SegmentSize + 1}
	for range 10 {
		sizes = append(sizes, SegmentSize+rng.IntN(12*SegmentSize))
	}
	for _, n := range sizes {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		if got, want := Sum(data), blake3.Sum256(data); got != want {
			t.Fatalf("size %d: %x, want %x", n, got, want)
		}
		v := NewVerifier(nil, data, nil)
		b := v.Batch()
		segs := n / SegmentSize
		for i := range segs { // out of order
			j := segs - 1 - i
			b.Add(j*SegmentSize, SegmentSize)
		}
		b.Wait()
		v.Close()
		if got := v.Sum(); got != blake3.Sum256(data) {
			t.Fatalf("verifier without a tree, size %d: wrong digest", n)
		}
	}
}

func BenchmarkSum(b *testing.B) {
	data := make([]byte, 256<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Sum(data)
	}
}

func BenchmarkSum256Library(b *testing.B) {
	data := make([]byte, 256<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		blake3.Sum256(data)
	}
}

func BenchmarkSum4KiB(b *testing.B) {
	data := make([]byte, 4096)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Sum(data)
	}
}

func BenchmarkSum256Library4KiB(b *testing.B) {
	data := make([]byte, 4096)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		blake3.Sum256(data)
	}
}
