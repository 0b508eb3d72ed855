package bao

import (
	"sync"
	"testing"
)

// A Verifier checks the ranges handed to it on its workers or inline,
// reports only ranges that verified, and a corrupt group stops its own
// batch, not another's.
func TestVerifierBatches(t *testing.T) {
	const size = 3*SegmentSize + 5*GroupSize + 100
	data := testData(size)
	outboard, root := Build(data)
	tree, err := Parse(outboard, size, root)
	if err != nil {
		t.Fatal(err)
	}
	buf := append([]byte(nil), data...)
	buf[SegmentSize+3*GroupSize] ^= 1 // group 67
	var mu sync.Mutex
	reported := map[int]int{}
	v := NewVerifier(tree, buf, func(off, n int) {
		mu.Lock()
		defer mu.Unlock()
		reported[off] = n
	})
	defer v.Close()
	good, bad := v.Batch(), v.Batch()
	good.Add(0, SegmentSize)
	bad.Add(SegmentSize, SegmentSize)
	good.Check(2*SegmentSize, SegmentSize)
	good.Add(3*SegmentSize, size-3*SegmentSize)
	if g := bad.Wait(); g != SegmentSize/GroupSize+3 {
		t.Fatalf("corrupt group reported as %d", g)
	}
	if g := good.Wait(); g != -1 {
		t.Fatalf("a batch of good ranges reports group %d corrupt", g)
	}
	want := map[int]int{0: SegmentSize, 2 * SegmentSize: SegmentSize, 3 * SegmentSize: size - 3*SegmentSize}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != len(want) {
		t.Fatalf("reported %v, want %v", reported, want)
	}
	for off, n := range want {
		if reported[off] != n {
			t.Fatalf("reported %v, want %v", reported, want)
		}
	}
}

// Without a tree, a Verifier's Sum of a corrupted object differs.
func TestVerifierSumDetectsCorruption(t *testing.T) {
	data := testData(2*SegmentSize + 7)
	root := Sum(data)
	data[SegmentSize+1] ^= 1
	v := NewVerifier(nil, data, nil)
	b := v.Batch()
	b.Add(0, 2*SegmentSize)
	b.Add(2*SegmentSize, 7)
	b.Wait()
	v.Close()
	if v.Sum() == root {
		t.Fatal("a corrupted object has the original's digest")
	}
}
