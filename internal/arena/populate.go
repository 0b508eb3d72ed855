package arena

import (
	"errors"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// PopulateChunk is the unit in which a mapping is populated: the 2 MiB of
// a huge page, small enough that stopping waits for little.
const PopulateChunk = 2 << 20

// A process's first write to a page of its mapping costs a page fault
// (the kernel maps the page into that process's page tables and, the first
// time any process touches a page fallocate reserved, zeroes it). A put of
// 256 MiB into never-touched memory takes 65,536 such faults and runs at a
// fraction of the speed of a put into pages already mapped. Populated
// prefaults a mapping in 2 MiB chunks with MADV_POPULATE_WRITE (Linux ≥
// 5.14), one madvise per chunk instead of one fault per 4 KiB page: in the
// background (Run) and on demand for the range an object is about to be
// written into (Ensure). Populating never changes the bytes: it only maps
// pages, so it may run while clients write objects. On an older kernel it
// does nothing and writes fault as before (touching the pages instead
// could raise SIGBUS where the arena is not reserved).
type Populated struct {
	mem  []byte
	done []atomic.Uint64 // bit i: chunk i is mapped
	// unsupported: the kernel has no MADV_POPULATE_WRITE (before 5.14).
	unsupported atomic.Bool
}

// NewPopulated tracks mem, a shared mapping of an arena, nothing of it
// populated yet.
func NewPopulated(mem []byte) *Populated {
	n := (len(mem) + PopulateChunk - 1) / PopulateChunk
	return &Populated{mem: mem, done: make([]atomic.Uint64, (n+63)/64)}
}

// Run populates every chunk not yet populated, in order from the start of
// the arena (where a fresh store allocates first), until all are or stop
// is closed. The caller must not unmap mem before Run returns.
func (p *Populated) Run(stop <-chan struct{}) {
	for i := range p.chunks() {
		select {
		case <-stop:
			return
		default:
		}
		if p.unsupported.Load() {
			return
		}
		p.populate(i)
	}
}

// Ensure populates the chunks that [off, off+n) overlaps and that are not
// populated yet, before the caller writes there: one madvise per chunk
// instead of a fault per page.
func (p *Populated) Ensure(off, n uint64) {
	if n == 0 || off >= uint64(len(p.mem)) {
		return
	}
	end := min(off+n, uint64(len(p.mem)))
	for i := int(off / PopulateChunk); i <= int((end-1)/PopulateChunk); i++ {
		if !p.isDone(i) {
			p.populate(i)
		}
	}
}

// Fill copies src into the mapping at off while another goroutine
// populates the chunks ahead of the copy: page-table setup on a second
// core instead of a fault per page in the copy. The copy never waits for
// it; the helper skips whatever the copy has reached (the copy faults
// those pages itself, as it would have anyway). Small or already
// populated ranges are just copied.
func (p *Populated) Fill(off uint64, src []byte) {
	dst := p.mem[off : off+uint64(len(src))]
	first, last := int(off/PopulateChunk), int((off+uint64(len(src))-1)/PopulateChunk)
	if len(src) < 4*PopulateChunk || p.unsupported.Load() || p.allDone(first, last) {
		copy(dst, src)
		return
	}
	var at atomic.Int64 // the chunk the copy is in
	at.Store(int64(first))
	helped := make(chan struct{})
	go func() {
		defer close(helped)
		for i := first + 1; i <= last; i++ {
			if int64(i) > at.Load() && !p.isDone(i) {
				p.populate(i)
			}
		}
	}()
	for i := first; i <= last; i++ {
		at.Store(int64(i))
		lo := max(uint64(i)*PopulateChunk, off) - off
		hi := min(uint64(i+1)*PopulateChunk, off+uint64(len(src))) - off
		copy(dst[lo:hi], src[lo:hi])
	}
	<-helped
	for i := first; i <= last; i++ {
		p.done[i/64].Or(1 << (i % 64)) // every page was written, so mapped
	}
}

func (p *Populated) allDone(first, last int) bool {
	for i := first; i <= last; i++ {
		if !p.isDone(i) {
			return false
		}
	}
	return true
}

// Complete reports whether every chunk is populated.
func (p *Populated) Complete() bool { return p.allDone(0, p.chunks()-1) }

func (p *Populated) chunks() int { return (len(p.mem) + PopulateChunk - 1) / PopulateChunk }

func (p *Populated) isDone(i int) bool { return p.done[i/64].Load()&(1<<(i%64)) != 0 }

// populate maps chunk i. Two goroutines may populate the same chunk at
// once (Run and an Ensure): the kernel makes that harmless. A chunk that
// fails (it should not: its pages are reserved) is left to fault.
func (p *Populated) populate(i int) {
	if p.unsupported.Load() {
		return
	}
	chunk := p.mem[i*PopulateChunk : min((i+1)*PopulateChunk, len(p.mem))]
	if err := unix.Madvise(chunk, unix.MADV_POPULATE_WRITE); errors.Is(err, unix.EINVAL) {
		p.unsupported.Store(true)
		return
	}
	p.done[i/64].Or(1 << (i % 64))
}
