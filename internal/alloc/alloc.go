package alloc

import (
	"errors"
	"fmt"

	"github.com/google/btree"
)

// Align is the alignment of every offset and the granularity of every size.
const Align = 64

// btreeDegree is the fan-out of the free-block indexes. A moderately wide node
// keeps the trees shallow and cache-friendly for tens of thousands of blocks.
const btreeDegree = 32

// ErrNotAllocated is returned (wrapped) by Free for an offset that is not the
// start of a live allocation, e.g. a double free or a bogus offset.
var ErrNotAllocated = errors.New("alloc: offset is not allocated")

// block is a contiguous, aligned range [off, off+size) of the arena.
type block struct {
	off  uint64
	size uint64
}

func (b block) end() uint64 { return b.off + b.size }

// lessBySize orders free blocks for best fit: smallest first, lowest offset
// breaking ties, so the first block >= (need, 0) is exactly the best fit.
func lessBySize(a, b block) bool {
	if a.size != b.size {
		return a.size < b.size
	}
	return a.off < b.off
}

// lessByOff orders free blocks by address. Free blocks never overlap, so the
// offset alone is a unique key.
func lessByOff(a, b block) bool { return a.off < b.off }

// Allocator hands out aligned offsets inside an arena of fixed capacity.
// It is not safe for concurrent use; see the package documentation.
type Allocator struct {
	capacity uint64 // usable capacity, a multiple of Align
	used     uint64 // sum of rounded sizes in allocated
	free     uint64 // sum of sizes in the free indexes

	bySize *btree.BTreeG[block] // free blocks by (size, off)
	byOff  *btree.BTreeG[block] // the same free blocks by off

	allocated map[uint64]uint64 // live allocation offset -> rounded size
}

// New returns an allocator for an arena of capacity bytes. The usable capacity
// is capacity rounded down to Align; initially it is one free block.
func New(capacity uint64) *Allocator {
	a := &Allocator{
		capacity:  capacity &^ (Align - 1),
		bySize:    btree.NewG(btreeDegree, lessBySize),
		byOff:     btree.NewG(btreeDegree, lessByOff),
		allocated: make(map[uint64]uint64),
	}
	if a.capacity > 0 {
		a.insertFree(block{off: 0, size: a.capacity})
	}
	return a
}

// roundSize converts a request into the number of bytes actually reserved.
// It reports false when the request can never fit (which also rules out
// overflow while rounding up).
func (a *Allocator) roundSize(size uint64) (uint64, bool) {
	if size > a.capacity {
		return 0, false
	}
	if size == 0 {
		size = 1 // zero-sized objects still need a distinct offset
	}
	return (size + Align - 1) &^ (Align - 1), true
}

// Alloc reserves size bytes (rounded up to Align, minimum Align) using best
// fit and returns the offset. It reports false if no free block is large
// enough.
func (a *Allocator) Alloc(size uint64) (off uint64, ok bool) {
	need, ok := a.roundSize(size)
	if !ok {
		return 0, false
	}
	var found block
	ok = false
	a.bySize.AscendGreaterOrEqual(block{size: need}, func(b block) bool {
		found, ok = b, true
		return false
	})
	if !ok {
		return 0, false
	}
	return a.take(found, need), true
}

// AllocLowest reserves size bytes (rounded like Alloc) in the free block with
// the lowest address that is large enough. It is O(number of free blocks) and
// intended for compaction only.
func (a *Allocator) AllocLowest(size uint64) (off uint64, ok bool) {
	need, ok := a.roundSize(size)
	if !ok {
		return 0, false
	}
	var found block
	ok = false
	a.byOff.Ascend(func(b block) bool {
		if b.size >= need {
			found, ok = b, true
			return false
		}
		return true
	})
	if !ok {
		return 0, false
	}
	return a.take(found, need), true
}

// take carves need bytes from the start of free block b (b.size >= need) and
// returns the remainder, if any, to the free indexes. The remainder cannot be
// adjacent to another free block because b itself was not.
func (a *Allocator) take(b block, need uint64) uint64 {
	a.removeFree(b)
	if b.size > need {
		a.insertFree(block{off: b.off + need, size: b.size - need})
	}
	a.allocated[b.off] = need
	a.used += need
	return b.off
}

// Free releases the allocation starting at off and coalesces it with the free
// blocks immediately before and after it. Freeing an offset that is not a
// live allocation returns an error wrapping ErrNotAllocated and changes
// nothing.
func (a *Allocator) Free(off uint64) error {
	size, ok := a.allocated[off]
	if !ok {
		return fmt.Errorf("%w: offset %d", ErrNotAllocated, off)
	}
	delete(a.allocated, off)
	a.used -= size

	nb := block{off: off, size: size}

	// Left neighbour: the free block with the greatest offset below off. It
	// is mergeable only if it ends exactly where the released block starts.
	if off > 0 {
		var left block
		found := false
		a.byOff.DescendLessOrEqual(block{off: off - 1}, func(b block) bool {
			left, found = b, true
			return false
		})
		if found && left.end() == off {
			a.removeFree(left)
			nb = block{off: left.off, size: left.size + nb.size}
		}
	}

	// Right neighbour: a free block starting exactly at the released end.
	if right, found := a.byOff.Get(block{off: nb.end()}); found {
		a.removeFree(right)
		nb.size += right.size
	}

	a.insertFree(nb)
	return nil
}

// insertFree adds b to both free indexes.
func (a *Allocator) insertFree(b block) {
	a.bySize.ReplaceOrInsert(b)
	a.byOff.ReplaceOrInsert(b)
	a.free += b.size
}

// removeFree removes b from both free indexes.
func (a *Allocator) removeFree(b block) {
	a.bySize.Delete(b)
	a.byOff.Delete(b)
	a.free -= b.size
}

// SizeOf returns the rounded size of the live allocation at off.
func (a *Allocator) SizeOf(off uint64) (uint64, bool) {
	size, ok := a.allocated[off]
	return size, ok
}

// Capacity returns the usable arena size (the requested capacity rounded
// down to Align).
func (a *Allocator) Capacity() uint64 { return a.capacity }

// Used returns the sum of the rounded sizes of all live allocations.
func (a *Allocator) Used() uint64 { return a.used }

// FreeBytes returns the total size of all free blocks.
func (a *Allocator) FreeBytes() uint64 { return a.free }

// LargestFree returns the size of the largest contiguous free block, i.e. the
// largest request Alloc is guaranteed to satisfy. It is O(log n).
func (a *Allocator) LargestFree() uint64 {
	if b, ok := a.bySize.Max(); ok {
		return b.size
	}
	return 0
}

// FreeBlocks returns the number of free blocks. Since free blocks are always
// coalesced, more than one block means the free space is fragmented.
func (a *Allocator) FreeBlocks() int { return a.byOff.Len() }

// Allocations returns the number of live allocations.
func (a *Allocator) Allocations() int { return len(a.allocated) }
