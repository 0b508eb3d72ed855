package alloc

import (
	"errors"
	"testing"
)

func mustCheck(t testing.TB, a *Allocator) {
	t.Helper()
	if err := a.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if a.Used()+a.FreeBytes() != a.Capacity() {
		t.Fatalf("used %d + free %d != capacity %d", a.Used(), a.FreeBytes(), a.Capacity())
	}
}

func roundUp(size uint64) uint64 {
	if size == 0 {
		return Align
	}
	return (size + Align - 1) &^ (Align - 1)
}

// step is one operation of a table-driven scenario: either an allocation of
// size (checked against wantOff/wantOK) or, when free is set, freeing the
// offset returned by the allocation with index free-1.
type step struct {
	alloc   uint64
	lowest  bool
	free    int // 1-based index into previous steps; 0 means "alloc"
	freeOff *uint64
	wantOff uint64
	wantOK  bool
	wantErr bool
}

func off(o uint64) *uint64 { return &o }

func TestBasics(t *testing.T) {
	tests := []struct {
		name       string
		capacity   uint64
		steps      []step
		wantBlocks int
		wantLF     uint64
		wantUsed   uint64
	}{
		{
			name:     "capacity rounded down",
			capacity: 1000, // -> 960
			steps: []step{
				{alloc: 960, wantOff: 0, wantOK: true},
			},
			wantBlocks: 0, wantLF: 0, wantUsed: 960,
		},
		{
			name:     "tiny capacity is unusable",
			capacity: 63,
			steps: []step{
				{alloc: 0, wantOK: false},
				{alloc: 1, wantOK: false},
			},
			wantBlocks: 0, wantLF: 0, wantUsed: 0,
		},
		{
			name:     "alignment",
			capacity: 4096,
			steps: []step{
				{alloc: 1, wantOff: 0, wantOK: true},
				{alloc: 64, wantOff: 64, wantOK: true},
				{alloc: 65, wantOff: 128, wantOK: true},
				{alloc: 100, wantOff: 256, wantOK: true},
			},
			wantBlocks: 1, wantLF: 4096 - 384, wantUsed: 384,
		},
		{
			name:     "size zero gets distinct offsets",
			capacity: 4096,
			steps: []step{
				{alloc: 0, wantOff: 0, wantOK: true},
				{alloc: 0, wantOff: 64, wantOK: true},
				{alloc: 0, wantOff: 128, wantOK: true},
			},
			wantBlocks: 1, wantLF: 4096 - 192, wantUsed: 192,
		},
		{
			name:     "exact capacity",
			capacity: 1 << 20,
			steps: []step{
				{alloc: 1 << 20, wantOff: 0, wantOK: true},
				{alloc: 0, wantOK: false},
			},
			wantBlocks: 0, wantLF: 0, wantUsed: 1 << 20,
		},
		{
			name:     "out of space",
			capacity: 1024,
			steps: []step{
				{alloc: 1025, wantOK: false},
				{alloc: 1 << 63, wantOK: false},
				{alloc: ^uint64(0), wantOK: false},
				{alloc: 512, wantOff: 0, wantOK: true},
				{alloc: 513, wantOK: false},
				{alloc: 512, wantOff: 512, wantOK: true},
				{alloc: 1, wantOK: false},
				{alloc: 1, lowest: true, wantOK: false},
			},
			wantBlocks: 0, wantLF: 0, wantUsed: 1024,
		},
		{
			name:     "double free and bad offsets",
			capacity: 1024,
			steps: []step{
				{alloc: 128, wantOff: 0, wantOK: true},
				{alloc: 128, wantOff: 128, wantOK: true},
				{free: 1},
				{free: 1, wantErr: true},           // double free
				{freeOff: off(64), wantErr: true},  // inside an allocation
				{freeOff: off(129), wantErr: true}, // unaligned
				{freeOff: off(512), wantErr: true}, // inside a free block
				{freeOff: off(1 << 40), wantErr: true},
			},
			wantBlocks: 2, wantLF: 1024 - 256, wantUsed: 128,
		},
		{
			name:     "coalesce left",
			capacity: 1024,
			steps: []step{
				{alloc: 128, wantOff: 0, wantOK: true},
				{alloc: 128, wantOff: 128, wantOK: true},
				{alloc: 128, wantOff: 256, wantOK: true}, // keeps tail separate
				{free: 1},
				{free: 2}, // merges with [0,128)
			},
			wantBlocks: 2, wantLF: 1024 - 384, wantUsed: 128,
		},
		{
			name:     "coalesce right",
			capacity: 1024,
			steps: []step{
				{alloc: 128, wantOff: 0, wantOK: true},
				{alloc: 128, wantOff: 128, wantOK: true},
				{alloc: 128, wantOff: 256, wantOK: true},
				{free: 2},
				{free: 1}, // merges with [128,256)
			},
			wantBlocks: 2, wantLF: 1024 - 384, wantUsed: 128,
		},
		{
			name:     "coalesce right into tail",
			capacity: 1024,
			steps: []step{
				{alloc: 128, wantOff: 0, wantOK: true},
				{alloc: 128, wantOff: 128, wantOK: true},
				{free: 2}, // merges with the tail [256,1024)
			},
			wantBlocks: 1, wantLF: 1024 - 128, wantUsed: 128,
		},
		{
			name:     "coalesce both sides",
			capacity: 1024,
			steps: []step{
				{alloc: 128, wantOff: 0, wantOK: true},
				{alloc: 128, wantOff: 128, wantOK: true},
				{alloc: 128, wantOff: 256, wantOK: true},
				{alloc: 128, wantOff: 384, wantOK: true},
				{free: 1},
				{free: 3},
				{free: 2}, // joins [0,128) and [256,384)
			},
			wantBlocks: 2, wantLF: 1024 - 512, wantUsed: 128,
		},
		{
			name:     "best fit picks smallest hole",
			capacity: 4096,
			steps: []step{
				{alloc: 256, wantOff: 0, wantOK: true},   // 1: hole of 256
				{alloc: 64, wantOff: 256, wantOK: true},  // 2
				{alloc: 128, wantOff: 320, wantOK: true}, // 3: hole of 128
				{alloc: 64, wantOff: 448, wantOK: true},  // 4
				{alloc: 128, wantOff: 512, wantOK: true}, // 5: hole of 128
				{alloc: 64, wantOff: 640, wantOK: true},  // 6
				{free: 1}, {free: 3}, {free: 5},
				{alloc: 100, wantOff: 320, wantOK: true},              // smallest fit, lowest of equals
				{alloc: 100, wantOff: 512, wantOK: true},              // next 128 hole
				{alloc: 150, wantOff: 0, wantOK: true},                // 256 hole, not the tail
				{alloc: 64, lowest: true, wantOff: 192, wantOK: true}, // lowest fit: remainder of 256 hole
			},
			wantBlocks: 1, wantLF: 4096 - 704, wantUsed: 704,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New(tt.capacity)
			mustCheck(t, a)
			offs := make([]uint64, len(tt.steps))
			for i, s := range tt.steps {
				switch {
				case s.free != 0 || s.freeOff != nil:
					o := offs[max(s.free-1, 0)]
					if s.freeOff != nil {
						o = *s.freeOff
					}
					before := a.Used()
					err := a.Free(o)
					if (err != nil) != s.wantErr {
						t.Fatalf("step %d: Free(%d) err=%v, wantErr=%v", i, o, err, s.wantErr)
					}
					if err != nil {
						if !errors.Is(err, ErrNotAllocated) {
							t.Fatalf("step %d: error %v does not wrap ErrNotAllocated", i, err)
						}
						if a.Used() != before {
							t.Fatalf("step %d: failed Free changed Used", i)
						}
					}
				default:
					var (
						o  uint64
						ok bool
					)
					if s.lowest {
						o, ok = a.AllocLowest(s.alloc)
					} else {
						o, ok = a.Alloc(s.alloc)
					}
					if ok != s.wantOK || (ok && o != s.wantOff) {
						t.Fatalf("step %d: Alloc(%d) = %d,%v; want %d,%v",
							i, s.alloc, o, ok, s.wantOff, s.wantOK)
					}
					if ok {
						if o%Align != 0 {
							t.Fatalf("step %d: unaligned offset %d", i, o)
						}
						if sz, _ := a.SizeOf(o); sz != roundUp(s.alloc) {
							t.Fatalf("step %d: SizeOf = %d, want %d", i, sz, roundUp(s.alloc))
						}
					}
					offs[i] = o
				}
				mustCheck(t, a)
			}
			if got := a.FreeBlocks(); got != tt.wantBlocks {
				t.Errorf("FreeBlocks = %d, want %d", got, tt.wantBlocks)
			}
			if got := a.LargestFree(); got != tt.wantLF {
				t.Errorf("LargestFree = %d, want %d", got, tt.wantLF)
			}
			if got := a.Used(); got != tt.wantUsed {
				t.Errorf("Used = %d, want %d", got, tt.wantUsed)
			}
		})
	}
}

func TestSizeOfUnknown(t *testing.T) {
	a := New(4096)
	if _, ok := a.SizeOf(0); ok {
		t.Fatal("SizeOf on empty allocator reported ok")
	}
	o, _ := a.Alloc(10)
	if sz, ok := a.SizeOf(o); !ok || sz != 64 {
		t.Fatalf("SizeOf = %d,%v", sz, ok)
	}
	if err := a.Free(o); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.SizeOf(o); ok {
		t.Fatal("SizeOf after Free reported ok")
	}
}

// TestCheckDetectsCorruption makes sure Check is not vacuous.
func TestCheckDetectsCorruption(t *testing.T) {
	corrupt := []struct {
		name string
		f    func(a *Allocator)
	}{
		{"overlapping allocation", func(a *Allocator) { a.allocated[1024] = 64; a.used += 64 }},
		{"used counter", func(a *Allocator) { a.used++ }},
		{"adjacent free blocks", func(a *Allocator) {
			b, _ := a.byOff.Max()
			a.removeFree(b)
			a.insertFree(block{b.off, 64})
			a.insertFree(block{b.off + 64, b.size - 64})
		}},
		{"index mismatch", func(a *Allocator) { a.bySize.ReplaceOrInsert(block{1 << 30, 64}) }},
		{"leaked allocation", func(a *Allocator) { delete(a.allocated, 0) }},
	}
	for _, c := range corrupt {
		t.Run(c.name, func(t *testing.T) {
			a := New(1 << 16)
			a.Alloc(100)
			a.Alloc(100)
			mustCheck(t, a)
			c.f(a)
			if err := a.Check(); err == nil {
				t.Fatal("Check did not detect corruption")
			}
		})
	}
}
