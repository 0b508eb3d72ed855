package storeserver

import (
	"context"
	"time"

	"github.com/plasmastream/plasmastream/internal/b3"
)

// digestQueue bounds the objects waiting for a background digest.
const digestQueue = 1 << 16

// digestDelay is how long a sealed object waits before it is hashed: the
// many objects that live shorter than this (put, read once, deleted) are
// never hashed, and hashing never competes with the burst of work around a
// Put. Measured: hashing at once took the put benchmark's put/delete cycle
// from 0.85 to 0.30 of memcpy (a deleted object's memory stayed pinned by
// the hasher, so the next Put landed on untouched pages).
const digestDelay = time.Second

type digestJob struct {
	id     id
	sealed time.Time
}

// digestLoop gives every sealed object its BLAKE3 digest: objects sealed
// without one (a client that did not compute it) are hashed here, a
// moment after Seal has returned, so Put never waits for the hash. It
// runs until ctx ends.
func (s *state) digestLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-s.digestQ:
			if wait := time.Until(job.sealed.Add(digestDelay)); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			s.digestOne(job.id)
		}
	}
}

// digestOne hashes one object. A reference held meanwhile keeps it from
// being evicted or moved by compaction; the hashing itself runs without
// the state lock.
func (s *state) digestOne(oid id) {
	s.mu.Lock()
	o, ok := s.objects[oid]
	if !ok || !o.sealed || o.hasDigest || o.deletePending {
		s.mu.Unlock()
		return
	}
	s.ref(s.hasher, o)
	data := s.mem[o.off : o.off+o.dataSize]
	s.mu.Unlock()

	d := b3.Sum(data)

	s.mu.Lock()
	defer s.mu.Unlock()
	if !o.hasDigest {
		o.hasDigest, o.digest = true, d
	}
	s.releaseLocked(s.hasher, o, 1)
}
