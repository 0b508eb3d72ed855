package bao

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"

	"lukechampine.com/blake3/guts"
)

// Group is log2 of the chunks per group used by the product: 16 KiB groups
// cost 64 bytes of outboard per 16 KiB (0.4%) and hash in one SIMD call.
const Group = 4

// GroupSize is the bytes in a group, the unit of verification.
const GroupSize = guts.ChunkSize << Group

// maxGroup bounds the group parameter (1 MiB groups); larger ones have no use.
const maxGroup = 10

// parallelMin is the size below which Build does not start goroutines.
const parallelMin = 1 << 20

// ErrBadOutboard is wrapped by every error Parse returns.
var ErrBadOutboard = errors.New("bao: bad outboard")

// OutboardSize is the length of the outboard of size bytes with 16 KiB
// groups.
func OutboardSize(size uint64) int { return int(outboardSize(size, Group)) }

// Groups is the number of 16 KiB groups of size bytes; the empty object has
// one empty group.
func Groups(size uint64) int { return int(groups(size, Group)) }

// groups does not overflow for any size: at most 2^54.
func groups(size uint64, group int) uint64 {
	gs := uint64(guts.ChunkSize) << group
	if size == 0 {
		return 1
	}
	n := size / gs
	if size%gs != 0 {
		n++
	}
	return n
}

// outboardSize is below 2^60 for any size.
func outboardSize(size uint64, group int) uint64 {
	return 8 + 64*(groups(size, group)-1)
}

// Build returns the outboard of data with 16 KiB groups and its root,
// blake3.Sum256(data). Large data is hashed on every core.
func Build(data []byte) (outboard []byte, root [32]byte) {
	return BuildGroup(data, Group)
}

// BuildGroup is Build with 2^group chunks per group (0 is standard Bao).
// It panics if group is not in [0, 10].
func BuildGroup(data []byte, group int) (outboard []byte, root [32]byte) {
	if group < 0 || group > maxGroup {
		panic(fmt.Sprintf("bao: group %d out of range", group))
	}
	size := uint64(len(data))
	gs := uint64(guts.ChunkSize) << group
	out := make([]byte, outboardSize(size, group))
	binary.LittleEndian.PutUint64(out, size)
	if size <= gs { // one group, at most a segment: only the root
		return out, rootOf(data)
	}
	leaves := make([][8]uint32, groups(size, group))
	leaf := func(i int) {
		off := uint64(i) * gs
		leaves[i] = guts.ChainingValue(subtree(data[off:min(off+gs, size)], uint64(i)<<group))
	}
	if size < parallelMin {
		for i := range leaves {
			leaf(i)
		}
	} else {
		parallel(len(leaves), 16, leaf)
	}
	return out, cvToBytes(parents(out[8:], leaves, size, gs, guts.FlagRoot))
}

// parallel calls f(0..n-1) on GOMAXPROCS goroutines, handing out batches
// of batch calls so that a slow core does not hold up the rest.
func parallel(n, batch int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				lo := int(next.Add(int64(batch))) - batch
				if lo >= n {
					return
				}
				for i := lo; i < min(lo+batch, n); i++ {
					f(i)
				}
			}
		})
	}
	wg.Wait()
}

// parents writes the parent nodes of the subtree of size (> gs) bytes whose
// group chaining values are leaves into out (nil: nowhere), in pre-order,
// and returns the subtree's chaining value. A subtree of k groups has k-1
// parents.
func parents(out []byte, leaves [][8]uint32, size, gs uint64, flags uint32) [8]uint32 {
	if size <= gs {
		return leaves[0]
	}
	mid := largestPow2Below(size)
	nl := mid / gs
	var lo, ro []byte
	if out != nil {
		lo, ro = out[64:], out[64*nl:]
	}
	l := parents(lo, leaves[:nl], mid, gs, 0)
	r := parents(ro, leaves[nl:], size-mid, gs, 0)
	if out != nil {
		putCV(out[:32], l)
		putCV(out[32:64], r)
	}
	key := guts.IV
	return guts.ChainingValue(guts.ParentNode(l, r, &key, flags))
}

// Tree is a checked outboard: the expected chaining value of every group.
// Its methods may be called concurrently.
type Tree struct {
	size     uint64
	group    int
	root     [32]byte
	outboard []byte
	leaves   [][8]uint32 // for one group, the root itself
}

// Parse checks outboard, with 16 KiB groups, against the object's size and
// root: its length, its length prefix and every parent node. An object of
// one group has no parents, so its root is checked only by VerifyGroup.
// The Tree keeps outboard, which must not be modified afterwards.
func Parse(outboard []byte, size uint64, root [32]byte) (*Tree, error) {
	return ParseGroup(outboard, size, root, Group)
}

// ParseGroup is Parse with 2^group chunks per group.
func ParseGroup(outboard []byte, size uint64, root [32]byte, group int) (*Tree, error) {
	if group < 0 || group > maxGroup {
		return nil, fmt.Errorf("%w: group %d out of range", ErrBadOutboard, group)
	}
	if want := outboardSize(size, group); uint64(len(outboard)) != want {
		return nil, fmt.Errorf("%w: %d bytes, want %d for %d bytes of data", ErrBadOutboard, len(outboard), want, size)
	}
	if prefix := binary.LittleEndian.Uint64(outboard); prefix != size {
		return nil, fmt.Errorf("%w: length prefix is %d, want %d", ErrBadOutboard, prefix, size)
	}
	t := &Tree{size: size, group: group, root: root, outboard: outboard,
		leaves: make([][8]uint32, groups(size, group))}
	if err := t.check(8, 0, size, bytesToCV(root[:]), guts.FlagRoot); err != nil {
		return nil, err
	}
	return t, nil
}

// check verifies the parent node at outboard[off:], the root of the subtree
// of size bytes from group first, against its expected chaining value cv,
// then its children; at a leaf it records cv. Lengths were checked, so
// every node is in bounds.
func (t *Tree) check(off int, first uint64, size uint64, cv [8]uint32, flags uint32) error {
	gs := uint64(t.GroupSize())
	if size <= gs {
		t.leaves[first] = cv
		return nil
	}
	l, r := bytesToCV(t.outboard[off:]), bytesToCV(t.outboard[off+32:])
	key := guts.IV
	if guts.ChainingValue(guts.ParentNode(l, r, &key, flags)) != cv {
		what := "its parent's left or right CV"
		if flags&guts.FlagRoot != 0 {
			what = "the root"
		}
		return fmt.Errorf("%w: parent node at offset %d does not hash to %s", ErrBadOutboard, off, what)
	}
	mid := largestPow2Below(size)
	nl := mid / gs
	if err := t.check(off+64, first, mid, l, 0); err != nil {
		return err
	}
	return t.check(off+64*int(nl), first+nl, size-mid, r, 0)
}

// Size is the object's length in bytes.
func (t *Tree) Size() uint64 { return t.size }

// Root is the object's BLAKE3 digest.
func (t *Tree) Root() [32]byte { return t.root }

// Outboard is the checked outboard, for passing on to other receivers.
func (t *Tree) Outboard() []byte { return t.outboard }

// Groups is the number of groups, 1 for the empty object.
func (t *Tree) Groups() int { return len(t.leaves) }

// GroupSize is the bytes in every group but the last.
func (t *Tree) GroupSize() int { return guts.ChunkSize << t.group }

// Span is the byte range of group i: the last may be short, the empty
// object's one group is (0, 0). It is (0, 0) for i out of range.
func (t *Tree) Span(i int) (off, n uint64) {
	if i < 0 || i >= len(t.leaves) {
		return 0, 0
	}
	gs := uint64(t.GroupSize())
	off = uint64(i) * gs
	return off, min(gs, t.size-off)
}

// VerifyGroup reports whether data is exactly the bytes of group i.
func (t *Tree) VerifyGroup(i int, data []byte) bool {
	if i < 0 || i >= len(t.leaves) {
		return false
	}
	if _, n := t.Span(i); uint64(len(data)) != n {
		return false
	}
	node := subtree(data, uint64(i)<<t.group)
	if len(t.leaves) == 1 {
		node.Flags |= guts.FlagRoot
	}
	return guts.ChainingValue(node) == t.leaves[i]
}

// subtree is the unfinalised root node of the tree over data (at most one
// group) whose first chunk has index counter. Up to 16 chunks are one SIMD
// call, without a copy when data is exactly 16 chunks; larger groups merge
// 16-chunk subtrees, splitting like BLAKE3 at the largest power of two.
func subtree(data []byte, counter uint64) guts.Node {
	const full = guts.MaxSIMD * guts.ChunkSize
	key := guts.IV
	if len(data) > full {
		left := largestPow2Below(uint64(len(data)+guts.ChunkSize-1) / guts.ChunkSize)
		split := left * guts.ChunkSize
		l := guts.ChainingValue(subtree(data[:split], counter))
		r := guts.ChainingValue(subtree(data[split:], counter+left))
		return guts.ParentNode(l, r, &key, 0)
	}
	if len(data) == full {
		return guts.CompressBuffer((*[full]byte)(data), full, &key, counter, 0)
	}
	var buf [full]byte
	copy(buf[:], data)
	return guts.CompressBuffer(&buf, len(data), &key, counter, 0)
}

// largestPow2Below is the largest power of two strictly less than n (n ≥ 2).
func largestPow2Below(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

func bytesToCV(b []byte) (cv [8]uint32) {
	_ = b[31]
	for i := range cv {
		cv[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return cv
}

func putCV(b []byte, cv [8]uint32) {
	_ = b[31]
	for i, w := range cv {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
}

func cvToBytes(cv [8]uint32) (b [32]byte) {
	putCV(b[:], cv)
	return b
}
