package alloc

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkAllocFree measures one Free plus one best-fit Alloc in steady
// state with about 10k live blocks of mixed sizes.
func BenchmarkAllocFree(b *testing.B) {
	const live = 10_000
	rng := rand.New(rand.NewPCG(1, 2))
	size := func() uint64 { return 1 + rng.Uint64N(64<<10) }
	a := New(1 << 34) // ample: the benchmark measures indexing, not exhaustion
	offs := make([]uint64, 0, live)
	for len(offs) < live {
		o, ok := a.Alloc(size())
		if !ok {
			b.Fatal("prefill failed")
		}
		offs = append(offs, o)
	}
	// Churn a while so the free indexes hold many fragments.
	churn := func() {
		k := rng.IntN(len(offs))
		if err := a.Free(offs[k]); err != nil {
			b.Fatal(err)
		}
		o, ok := a.Alloc(size())
		if !ok {
			b.Fatal("alloc failed")
		}
		offs[k] = o
	}
	for range 50_000 {
		churn()
	}
	for b.Loop() {
		churn()
	}
	// Reported after the loop: b.Loop resets metrics when it starts timing.
	b.ReportMetric(float64(a.FreeBlocks()), "freeblocks")
	b.ReportMetric(float64(a.Allocations()), "live")
}
