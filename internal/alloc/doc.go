// Package alloc implements the offset allocator for the shared-memory object
// store.
//
// The store keeps every object inside one arena: a shared memory file of a
// fixed capacity. The Allocator decides *where* in that arena each object
// lives. It only manages offsets; it never maps, reads or writes the memory
// itself, so it can be tested and reasoned about in isolation.
//
// # Model
//
// The usable arena is [0, Capacity()), where Capacity() is the requested
// capacity rounded down to Align (64 bytes). Every allocation starts at a
// multiple of Align and its size is rounded up to a multiple of Align; a
// zero-byte request still takes Align bytes so that every live object has a
// distinct offset. The allocator remembers each allocation's rounded size, so
// Free only needs the offset.
//
// # Invariants
//
// At every point between calls (and verified by Check):
//
//   - The free blocks and the allocated blocks together tile [0, Capacity())
//     exactly: they are aligned, non-empty, do not overlap, and leave no gaps.
//     Consequently Used() + FreeBytes() == Capacity().
//   - Free blocks are fully coalesced: no two free blocks are adjacent. Free
//     merges a released block with both neighbours immediately, so the number
//     of free blocks (FreeBlocks) is a direct measure of fragmentation.
//   - Each free block is indexed twice, by (size, offset) for best fit and by
//     offset for neighbour lookup and lowest-address allocation; the two
//     indexes always hold the same set of blocks.
//
// # Policies
//
// Alloc is best fit: it takes the smallest free block that is large enough,
// preferring the lowest offset among equally sized blocks, and splits off the
// tail as a new free block. It therefore fails only when no single free block
// is large enough (LargestFree() < rounded size). It runs in O(log n) in the
// number of free blocks.
//
// AllocLowest is first fit by address and exists for compaction: the store
// frees a live object and immediately re-allocates the same size with
// AllocLowest. Because the freed block (merged with any free space to its
// left) is itself a candidate, the new offset is never greater than the old
// one; processing live objects in ascending offset order slides everything
// down and leaves a single free block at the end of the arena. AllocLowest is
// O(number of free blocks), which is acceptable for that infrequent use.
//
// # Concurrency
//
// An Allocator is not safe for concurrent use. The store serializes all calls
// under its own lock.
package alloc
