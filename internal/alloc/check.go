package alloc

import (
	"fmt"
	"slices"
)

// Check verifies every invariant of the allocator and returns a description
// of the first violation found. It is O(n log n) in the number of blocks and
// meant for tests and debugging, not for hot paths.
//
// Verified: both free indexes hold the same blocks; free blocks are aligned,
// non-empty, sorted, non-overlapping and never adjacent; allocations are
// aligned and non-empty; free and allocated blocks together tile
// [0, Capacity()) with no gaps or overlaps; the Used and FreeBytes counters
// match the blocks.
func (a *Allocator) Check() error {
	if a.capacity%Align != 0 {
		return fmt.Errorf("capacity %d not aligned", a.capacity)
	}
	if a.bySize.Len() != a.byOff.Len() {
		return fmt.Errorf("free indexes disagree: %d by size, %d by offset",
			a.bySize.Len(), a.byOff.Len())
	}

	// Free blocks in address order, cross-checked against the size index.
	var (
		frees   []block
		freeSum uint64
		err     error
	)
	a.byOff.Ascend(func(b block) bool {
		switch {
		case b.size == 0:
			err = fmt.Errorf("empty free block at %d", b.off)
		case b.off%Align != 0 || b.size%Align != 0:
			err = fmt.Errorf("unaligned free block [%d,+%d)", b.off, b.size)
		case !a.bySize.Has(b):
			err = fmt.Errorf("free block [%d,+%d) missing from size index", b.off, b.size)
		}
		if n := len(frees); err == nil && n > 0 {
			prev := frees[n-1]
			if prev.end() > b.off {
				err = fmt.Errorf("free blocks overlap: [%d,+%d) and [%d,+%d)",
					prev.off, prev.size, b.off, b.size)
			} else if prev.end() == b.off {
				err = fmt.Errorf("free blocks not coalesced: [%d,+%d) and [%d,+%d)",
					prev.off, prev.size, b.off, b.size)
			}
		}
		frees = append(frees, b)
		freeSum += b.size
		return err == nil
	})
	if err != nil {
		return err
	}
	if freeSum != a.free {
		return fmt.Errorf("FreeBytes counter %d, free blocks sum to %d", a.free, freeSum)
	}

	// Allocations in address order.
	allocs := make([]block, 0, len(a.allocated))
	var usedSum uint64
	for off, size := range a.allocated {
		if size == 0 || off%Align != 0 || size%Align != 0 {
			return fmt.Errorf("bad allocation [%d,+%d)", off, size)
		}
		allocs = append(allocs, block{off: off, size: size})
		usedSum += size
	}
	if usedSum != a.used {
		return fmt.Errorf("Used counter %d, allocations sum to %d", a.used, usedSum)
	}
	slices.SortFunc(allocs, func(x, y block) int {
		switch {
		case x.off < y.off:
			return -1
		case x.off > y.off:
			return 1
		}
		return 0
	})

	// Merge both sorted lists and require that they tile the arena exactly:
	// each block must start where the previous one ended.
	var pos uint64
	i, j := 0, 0
	for i < len(frees) || j < len(allocs) {
		var b block
		kind := "free"
		if j >= len(allocs) || (i < len(frees) && frees[i].off < allocs[j].off) {
			b = frees[i]
			i++
		} else {
			b, kind = allocs[j], "allocated"
			j++
		}
		if b.off < pos {
			return fmt.Errorf("%s block [%d,+%d) overlaps previous block ending at %d",
				kind, b.off, b.size, pos)
		}
		if b.off > pos {
			return fmt.Errorf("gap [%d,%d) before %s block at %d", pos, b.off, kind, b.off)
		}
		pos = b.end()
	}
	if pos != a.capacity {
		return fmt.Errorf("blocks end at %d, capacity is %d", pos, a.capacity)
	}
	if a.used+a.free != a.capacity {
		return fmt.Errorf("used %d + free %d != capacity %d", a.used, a.free, a.capacity)
	}
	return nil
}
