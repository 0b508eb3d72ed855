package alloc

import "testing"

// Blocks past 4 GiB: a 5 GiB object beside small ones in an 11 GiB arena,
// freed and allocated again, never wraps an offset (no memory is touched:
// the allocator only does arithmetic).
func TestOver4GiB(t *testing.T) {
	const huge = 5<<30 + 64
	a := New(11 << 30)
	small, ok := a.Alloc(64)
	if !ok {
		t.Fatal("no room for 64 bytes")
	}
	first, ok := a.Alloc(huge)
	second, ok2 := a.Alloc(huge)
	if !ok || !ok2 {
		t.Fatal("two 5 GiB blocks do not fit 11 GiB")
	}
	if first == second || max(first, second) < 4<<30 || max(first, second)+huge > 11<<30 {
		t.Fatalf("5 GiB blocks at %d and %d (small at %d)", first, second, small)
	}
	for _, off := range []uint64{first, second, small} {
		if err := a.Free(off); err != nil {
			t.Fatal(err)
		}
	}
	if off, ok := a.Alloc(11<<30 - 64); !ok || off != 0 {
		t.Fatalf("after freeing all, 11 GiB - 64 at %d (%v): the free blocks did not merge back", off, ok)
	}
}
