package bao

import (
	"runtime"
	"sync"
	"sync/atomic"

	"lukechampine.com/blake3/guts"
)

// Verifier checks the bytes of one object as they arrive, on GOMAXPROCS
// workers, so that hashing overlaps with receiving and uses every core.
// It is the one verification path of every receiver (COPY, RELAY, RANGE).
//
// With a Tree (the object came with its outboard) each range handed over
// is checked group by group, and a corrupt group is known as soon as it is
// hashed. Without one only the root is known: the workers compute the
// chaining values of the full segments, and Sum gives the digest once all
// the data is there.
//
// Invariant: a range is reported to done only once all its groups have
// verified (without a tree: once its full segments are hashed); the
// caller must not write a range's bytes again until its Batch has waited.
type Verifier struct {
	t       *Tree
	buf     []byte
	cvs     [][8]uint32 // without a tree: the chaining values of the full segments
	done    func(off, n int)
	work    chan job
	start   sync.Once // the workers start with the first Add
	workers sync.WaitGroup
}

type job struct {
	off, n int
	b      *Batch
}

// Batch is ranges of one Verifier whose outcome one caller waits for: a
// corrupt group stops the rest of its batch, not the others'.
type Batch struct {
	v   *Verifier
	wg  sync.WaitGroup
	bad atomic.Int64 // the first corrupt group found, or -1
}

// NewVerifier prepares for buf, the whole object, checked against t (nil:
// hashed for Sum). done, if set, is called with each range once it has
// verified. Close it when done.
func NewVerifier(t *Tree, buf []byte, done func(off, n int)) *Verifier {
	v := &Verifier{t: t, buf: buf, done: done, work: make(chan job, 64)}
	if t == nil {
		v.cvs = make([][8]uint32, len(buf)/SegmentSize)
	}
	return v
}

func (v *Verifier) startWorkers() {
	work := v.work // Close clears v.work
	for range runtime.GOMAXPROCS(0) {
		v.workers.Go(func() {
			for j := range work {
				v.check(j)
				j.b.wg.Done()
			}
		})
	}
}

// Batch starts a batch of ranges.
func (v *Verifier) Batch() *Batch {
	b := &Batch{v: v}
	b.bad.Store(-1)
	return b
}

// Add hands over the arrived bytes [off, off+n): with a tree a whole
// number of groups from a group boundary, without one of segments from a
// segment boundary, unless they end the object.
func (b *Batch) Add(off, n int) {
	b.v.start.Do(b.v.startWorkers)
	b.wg.Add(1)
	b.v.work <- job{off, n, b}
}

// Check checks [off, off+n) as Add does, but on the calling goroutine:
// for a receiver that has goroutines of its own, hashing what it just
// read while it is still in this core's cache.
func (b *Batch) Check(off, n int) { b.v.check(job{off, n, b}) }

// Wait waits until every range added has been checked and returns the
// first corrupt group found, or -1.
func (b *Batch) Wait() int {
	b.wg.Wait()
	return b.Bad()
}

// Bad is the first corrupt group found so far, or -1.
func (b *Batch) Bad() int { return int(b.bad.Load()) }

func (v *Verifier) check(j job) {
	if j.b.Bad() >= 0 {
		return
	}
	if v.t == nil {
		for s := j.off / SegmentSize; s < len(v.cvs) && s*SegmentSize < j.off+j.n; s++ {
			v.cvs[s] = segmentCV(v.buf, s)
		}
	} else {
		for g := j.off / v.t.GroupSize(); g <= (j.off+j.n-1)/v.t.GroupSize(); g++ {
			from, n := v.t.Span(g)
			if !v.t.VerifyGroup(g, v.buf[from:from+n]) {
				j.b.bad.CompareAndSwap(-1, int64(g))
				return
			}
		}
	}
	if v.done != nil {
		v.done(j.off, j.n)
	}
}

// Close stops the workers once the ranges handed over are checked.
func (v *Verifier) Close() {
	if v.work != nil {
		close(v.work)
		v.work = nil
	}
	v.workers.Wait()
}

// Sum is the digest of the object, for a Verifier without a tree that has
// been handed every full segment and closed.
func (v *Verifier) Sum() [32]byte {
	size := uint64(len(v.buf))
	if size <= SegmentSize {
		return rootOf(v.buf)
	}
	cvs := v.cvs
	if size%SegmentSize != 0 {
		cvs = append(cvs, segmentCV(v.buf, len(cvs)))
	}
	return cvToBytes(parents(nil, cvs, size, SegmentSize, guts.FlagRoot))
}
