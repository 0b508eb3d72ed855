package store_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// Under random create/delete churn, with some objects held, fragmentation
// never produces a false "store full": Create fails only when no gap
// between held (pinned) objects could fit the object; with nothing held it
// never evicts while the free bytes alone suffice (compaction comes
// first). Every surviving object keeps its bytes.
func TestChurnNeverFalselyFull(t *testing.T) {
	const capacity = 4 << 20
	sock, _ := testutil.StartStore(t, capacity)
	c := testutil.StoreClient(t, sock)
	ctx := context.Background()
	refused := 0
	for _, seed := range []uint64{1, 2, 3} {
		rng := rand.New(rand.NewPCG(seed, 7))
		live := map[store.ObjectID]byte{} // sealed objects we put, and their fill byte
		held := map[store.ObjectID]bool{}
		for op := range 1500 {
			switch r := rng.IntN(10); {
			case r < 6:
				size := 1 + rng.IntN(300<<10)
				if rng.IntN(8) == 0 {
					size = 1 + rng.IntN(1500<<10)
				}
				before, _ := c.Stats(ctx)
				id, fill := store.RandomObjectID(), byte(op)
				buf, err := c.Create(ctx, id, uint64(size), nil)
				if errors.Is(err, store.ErrOutOfMemory) {
					if gap := largestPinnedGap(t, c, capacity); gap >= roundUp64(size) {
						t.Fatalf("seed %d op %d: %d bytes refused although a gap of %d exists between held objects", seed, op, size, gap)
					}
					refused++
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				after, _ := c.Stats(ctx)
				// With nothing pinned, compaction alone must make the room.
				if free := before.Capacity - before.Used; len(held) == 0 && free >= uint64(roundUp64(size)) && after.Evictions != before.Evictions {
					t.Fatalf("seed %d op %d: evicted although %d bytes were free for %d", seed, op, free, size)
				}
				for i := range buf {
					buf[i] = fill
				}
				c.Seal(ctx, id)
				live[id] = fill
				if rng.IntN(5) == 0 {
					held[id] = true // keep the creator's reference: pinned
				} else {
					c.Release(ctx, id)
				}
			case r < 9:
				for id := range live {
					if held[id] {
						c.Release(ctx, id)
						delete(held, id)
					}
					c.Delete(ctx, id)
					delete(live, id)
					break
				}
			default:
				checkContents(t, c, live)
			}
		}
		checkContents(t, c, live)
		for id := range held {
			c.Release(ctx, id)
		}
		for id := range live {
			c.Delete(ctx, id)
		}
	}
	st, _ := c.Stats(ctx)
	t.Logf("%d creates refused, %d evictions, %d compactions", refused, st.Evictions, st.Compactions)
	if refused == 0 || st.Compactions == 0 {
		t.Fatal("the churn never filled the store: the property was not exercised")
	}
}

func roundUp64(n int) int { return (n + 63) &^ 63 }

// largestPinnedGap is the largest contiguous space the store could free by
// evicting and compacting everything that is not pinned.
func largestPinnedGap(t *testing.T, c *store.Client, capacity int) int {
	infos, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var pinned []store.ObjectInfo
	for _, in := range infos {
		if in.State != store.StateSealed || in.RefCount > 0 {
			pinned = append(pinned, in)
		}
	}
	sort.Slice(pinned, func(i, j int) bool { return pinned[i].Offset < pinned[j].Offset })
	gap, at := 0, 0
	for _, p := range pinned {
		gap = max(gap, int(p.Offset)-at)
		at = int(p.Offset) + roundUp64(max(int(p.DataSize)+int(p.MetadataSize), 1))
	}
	return max(gap, capacity&^63-at)
}

// checkContents verifies that every object still in the store has the
// bytes it was written with (evicted ones may be gone).
func checkContents(t *testing.T, c *store.Client, live map[store.ObjectID]byte) {
	ctx := context.Background()
	for id, fill := range live {
		o, err := c.GetOne(ctx, id, 0)
		if errors.Is(err, store.ErrObjectNotFound) {
			delete(live, id) // evicted
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range o.Data {
			if b != fill {
				t.Fatalf("object %s corrupted (moved or overwritten)", id)
			}
		}
		c.Release(ctx, id)
	}
}
