package alloc

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRandomChurn runs long random sequences of allocations and frees and
// checks every invariant after every operation.
func TestRandomChurn(t *testing.T) {
	// Enough operations for the cap/256 mix (~0.2 net allocations per op of
	// ~cap/512 each) to fill the arena well before the end.
	const ops = 5000
	// maxDiv bounds request sizes at capacity/maxDiv: 8 is the spec'd mix of
	// large objects; 256 keeps hundreds of blocks live for deeper trees.
	for _, maxDiv := range []uint64{8, 256} {
		for seed := uint64(1); seed <= 8; seed++ {
			t.Run(fmt.Sprintf("max=cap/%d/seed=%d", maxDiv, seed), func(t *testing.T) {
				churn(t, seed, maxDiv, ops)
			})
		}
	}
}

func churn(t *testing.T, seed, maxDiv uint64, ops int) {
	const capacity = 1<<20 + 100 // deliberately unaligned
	rng := rand.New(rand.NewPCG(seed, seed*7919+maxDiv))
	a := New(capacity)
	cap := a.Capacity()
	live := map[uint64]uint64{} // offset -> rounded size (the model)
	var liveOffs []uint64
	fails := 0
	for i := 0; i < ops; i++ {
		// Allocations outnumber frees so the arena fills up and the
		// "fails only when nothing fits" property is actually exercised.
		if len(liveOffs) == 0 || rng.IntN(100) < 60 {
			size := 1 + rng.Uint64N(cap/maxDiv)
			if rng.IntN(10) == 0 {
				size = rng.Uint64N(200) // small and zero sizes too
			}
			lf := a.LargestFree()
			o, ok := a.Alloc(size)
			if !ok {
				fails++
				if lf >= roundUp(size) {
					t.Fatalf("op %d: Alloc(%d) failed with LargestFree %d", i, size, lf)
				}
				if a.LargestFree() != lf {
					t.Fatalf("op %d: failed Alloc changed state", i)
				}
			} else {
				if _, dup := live[o]; dup {
					t.Fatalf("op %d: offset %d handed out twice", i, o)
				}
				if o%Align != 0 || o+roundUp(size) > cap {
					t.Fatalf("op %d: bad offset %d for size %d", i, o, size)
				}
				live[o] = roundUp(size)
				liveOffs = append(liveOffs, o)
			}
		} else {
			k := rng.IntN(len(liveOffs))
			o := liveOffs[k]
			liveOffs[k] = liveOffs[len(liveOffs)-1]
			liveOffs = liveOffs[:len(liveOffs)-1]
			if sz, ok := a.SizeOf(o); !ok || sz != live[o] {
				t.Fatalf("op %d: SizeOf(%d) = %d,%v want %d", i, o, sz, ok, live[o])
			}
			if err := a.Free(o); err != nil {
				t.Fatalf("op %d: Free(%d): %v", i, o, err)
			}
			delete(live, o)
			if rng.IntN(20) == 0 { // occasional double free must be harmless
				if err := a.Free(o); err == nil {
					t.Fatalf("op %d: double free succeeded", i)
				}
			}
		}
		mustCheck(t, a)
		var sum uint64
		for _, s := range live {
			sum += s
		}
		if sum != a.Used() {
			t.Fatalf("op %d: Used %d, model %d", i, a.Used(), sum)
		}
	}
	if fails == 0 {
		t.Errorf("no allocation ever failed; the arena never filled up")
	}
	t.Logf("%d ops, %d failed allocs, %d live, %d free blocks", ops, fails, len(liveOffs), a.FreeBlocks())

	rng.Shuffle(len(liveOffs), func(i, j int) { liveOffs[i], liveOffs[j] = liveOffs[j], liveOffs[i] })
	for _, o := range liveOffs {
		if err := a.Free(o); err != nil {
			t.Fatalf("final Free(%d): %v", o, err)
		}
		mustCheck(t, a)
	}
	if a.FreeBlocks() != 1 || a.LargestFree() != cap || a.Used() != 0 {
		t.Fatalf("after freeing all: blocks=%d largest=%d used=%d",
			a.FreeBlocks(), a.LargestFree(), a.Used())
	}
}

// TestCompaction simulates the store's compaction pass over a fragmented
// arena and checks that it slides every object down into one packed prefix.
func TestCompaction(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		rng := rand.New(rand.NewPCG(seed, 42))
		a := New(1 << 22)
		var offs []uint64
		for {
			o, ok := a.Alloc(rng.Uint64N(a.Capacity() / 64))
			if !ok {
				break
			}
			offs = append(offs, o)
		}
		// Free a random ~half to fragment the arena.
		var live []uint64
		for _, o := range offs {
			if rng.IntN(2) == 0 {
				if err := a.Free(o); err != nil {
					t.Fatal(err)
				}
			} else {
				live = append(live, o)
			}
		}
		mustCheck(t, a)
		usedBefore := a.Used()
		blocksBefore := a.FreeBlocks()

		slices.Sort(live)
		for _, old := range live {
			size, ok := a.SizeOf(old)
			if !ok {
				t.Fatalf("seed %d: live offset %d unknown", seed, old)
			}
			if err := a.Free(old); err != nil {
				t.Fatal(err)
			}
			nu, ok := a.AllocLowest(size)
			if !ok {
				t.Fatalf("seed %d: AllocLowest(%d) failed after freeing it", seed, size)
			}
			if nu > old {
				t.Fatalf("seed %d: compaction moved %d up to %d", seed, old, nu)
			}
			if got, _ := a.SizeOf(nu); got != size {
				t.Fatalf("seed %d: size changed %d -> %d", seed, size, got)
			}
			mustCheck(t, a)
		}
		if a.Used() != usedBefore {
			t.Fatalf("seed %d: Used changed %d -> %d", seed, usedBefore, a.Used())
		}
		wantBlocks := 1
		if a.FreeBytes() == 0 {
			wantBlocks = 0
		}
		if a.FreeBlocks() != wantBlocks || a.LargestFree() != a.FreeBytes() {
			t.Fatalf("seed %d: after compaction blocks=%d (before %d) largest=%d free=%d",
				seed, a.FreeBlocks(), blocksBefore, a.LargestFree(), a.FreeBytes())
		}
		if blocksBefore < 2 {
			t.Logf("seed %d: arena was not fragmented before compaction", seed)
		}
		// The single free block must be the tail: everything slid down.
		if o, ok := a.Alloc(a.FreeBytes()); a.FreeBytes() > 0 && (!ok || o != usedBefore) {
			t.Fatalf("seed %d: free space not at tail: off=%d ok=%v used=%d", seed, o, ok, usedBefore)
		}
	}
}
