package arena_test

import (
	"bytes"
	"testing"

	"github.com/plasmastream/plasmastream/internal/arena"
	"github.com/plasmastream/plasmastream/internal/testutil"
)

// mapped is the resident size of this process's one writable mapping of
// a memfd arena.
func mapped(t *testing.T) uint64 {
	t.Helper()
	rss := testutil.MappedBytes(t, 0, "plasma-arena", "rw-s")
	if len(rss) != 1 {
		t.Fatalf("%d writable arena mappings in this process, want 1", len(rss))
	}
	return rss[0]
}

// Ensure maps exactly the 2 MiB chunks a range overlaps, Run the rest,
// and neither changes a byte.
func TestPopulated(t *testing.T) {
	const size = 5*arena.PopulateChunk + 4096 // a short last chunk
	a, err := arena.Create(size, arena.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.Mem[size-1] = 7 // one page mapped, in the last chunk
	if got := mapped(t); got != 4096 {
		t.Fatalf("a fresh arena with one page written has %d bytes mapped", got)
	}
	p := arena.NewPopulated(a.Mem)
	p.Ensure(arena.PopulateChunk+100, arena.PopulateChunk) // chunks 1 and 2
	if got, want := mapped(t), uint64(2*arena.PopulateChunk+4096); got != want {
		t.Fatalf("after Ensure of chunks 1-2: %d bytes mapped, want %d", got, want)
	}
	if p.Complete() {
		t.Fatal("Complete after populating 2 of 6 chunks")
	}
	p.Run(make(chan struct{}))
	if got := mapped(t); got != uint64(len(a.Mem)) || !p.Complete() {
		t.Fatalf("after Run: %d of %d bytes mapped (complete: %v)", got, len(a.Mem), p.Complete())
	}
	if a.Mem[size-1] != 7 || a.Mem[0] != 0 {
		t.Fatal("populating changed the arena's bytes")
	}
}

// Run stops before the first chunk when stop is already closed.
func TestPopulatedStop(t *testing.T) {
	a, err := arena.Create(4*arena.PopulateChunk, arena.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	stop := make(chan struct{})
	close(stop)
	p := arena.NewPopulated(a.Mem)
	p.Run(stop)
	if got := mapped(t); got != 0 || p.Complete() {
		t.Fatalf("Run with stop closed mapped %d bytes", got)
	}
}

// Fill copies exactly src to off, whatever the helper goroutine did, and
// leaves the chunks it wrote marked populated.
func TestPopulatedFill(t *testing.T) {
	const size = 8 * arena.PopulateChunk
	a, err := arena.Create(size, arena.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	src := make([]byte, 5*arena.PopulateChunk+123)
	for i := range src {
		src[i] = byte(i*13 + i>>12)
	}
	const off = arena.PopulateChunk + 4096 + 64 // not chunk-aligned
	p := arena.NewPopulated(a.Mem)
	p.Fill(off, src)
	if !bytes.Equal(a.Mem[off:off+len(src)], src) {
		t.Fatal("Fill wrote other bytes than src")
	}
	if a.Mem[off-1] != 0 || a.Mem[off+len(src)] != 0 {
		t.Fatal("Fill wrote outside its range")
	}
	if got := mapped(t); got < uint64(len(src)) {
		t.Fatalf("after Fill of %d bytes only %d are mapped", len(src), got)
	}
	p.Ensure(off, uint64(len(src))) // all marked: maps nothing more
	if got, want := mapped(t), uint64(7*arena.PopulateChunk); got > want {
		t.Fatalf("Ensure after Fill mapped more: %d bytes, the chunks written are %d", got, want)
	}
}
