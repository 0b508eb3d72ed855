package storeserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/storewire"
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

// digestJob names the object instance, not just its id: an object deleted
// and created again under the same id within digestDelay is another
// object, which its own job hashes a full digestDelay after its own seal
// (by when a receiver has usually handed the store its outboard). Hashing
// it early, by the job of the first, once pinned a just-received object
// while its client deleted it, so the client's next Create of the id
// failed as "pending deletion".
type digestJob struct {
	o      *object
	sealed time.Time
}

// hashed reports whether o has its digest and, if it spans more than one
// 16 KiB group, its bao outboard.
func (o *object) hashed() bool {
	return o.hasDigest && (o.outboard != nil || o.dataSize <= bao.GroupSize)
}

// digestTick is the shortest wait of the digest loop: objects sealed in
// quick succession are hashed together, after one timer, rather than each
// after its own. A timer per object (one every 20 µs under a stream of
// small Creates) woke an idle runtime thread as often, and on two cores
// every such wake-up preempted a connection polling for its client's next
// request.
const digestTick = 50 * time.Millisecond

// digestLoop gives every sealed object its BLAKE3 digest and bao outboard:
// objects sealed without them are hashed here, at least digestDelay (and
// less than digestDelay+digestTick) after their seal, so Put never waits
// for the hash. It runs until ctx ends.
func (s *state) digestLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-s.digestQ:
			if wait := time.Until(job.sealed.Add(digestDelay)); wait > 0 {
				timer.Reset(max(wait, digestTick))
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
			s.runDigestJob(job)
			s.digestBacklog.Add(-1)
		}
	}
}

// runDigestJob hashes the job's object if it is still in the store, sealed
// and not being deleted.
func (s *state) runDigestJob(job digestJob) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := job.o; s.objects[o.id] == o && o.sealed && !o.deletePending {
		s.hashLocked(o)
	}
}

// hashLocked computes o's digest and outboard in one parallel pass over
// its data, unless it has them. It is called and returns with s.mu held;
// the hashing runs without the lock while a reference keeps o from being
// evicted or moved by compaction. A second caller waits for the first.
func (s *state) hashLocked(o *object) {
	for o.building != nil {
		ch := o.building
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	if o.hashed() {
		return
	}
	done := make(chan struct{})
	o.building = done
	s.ref(s.hasher, o, false) // hashing is not a use: o keeps its LRU place
	data := s.mem[o.off : o.off+o.dataSize]
	s.mu.Unlock()

	outboard, root := bao.Build(data)

	s.mu.Lock()
	// The data wins over a digest a client vouched for at Seal.
	learned := !o.hasDigest || o.digest != root
	o.hasDigest, o.digest = true, root
	if o.dataSize > bao.GroupSize {
		o.outboard = outboard
	}
	o.building = nil
	close(done)
	if learned && !o.deletePending {
		// Before the release: a deletion it completes is told after.
		s.publish(storewire.EventDigest, o)
	}
	s.releaseLocked(s.hasher, o, 1)
}

// outboard returns a sealed object's digest and outboard, building them
// now if the background digester has not yet.
func (s *state) outboard(oid storewire.ID) (storewire.Outboard, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[oid]
	if !ok || !o.sealed || o.deletePending {
		return storewire.Outboard{}, errf(storewire.CodeObjectNotFound, "outboard: object %s is not in the store", oid.String())
	}
	if bao.OutboardSize(o.dataSize) > storewire.MaxOutboard {
		return storewire.Outboard{}, errf(storewire.CodeInvalidRequest, "outboard: object %s has %d bytes; outboards are kept for objects up to 16 GiB", oid.String(), o.dataSize)
	}
	s.hashLocked(o)
	r := storewire.Outboard{Digest: o.digest, Outboard: o.outboard}
	if r.Outboard == nil {
		// A one-group object has no parent node: 8 bytes of length.
		r.Outboard = binary.LittleEndian.AppendUint64(nil, o.dataSize)
	}
	return r, nil
}

// setOutboard keeps the outboard a client built for a sealed object whose
// digest the store knows, after checking that it hashes up to that digest.
func (s *state) setOutboard(m *storewire.SetOutboard) error {
	s.mu.Lock()
	o, ok := s.objects[m.ID]
	switch {
	case !ok || !o.sealed:
		s.mu.Unlock()
		return errf(storewire.CodeObjectNotFound, "set outboard: object %s is not sealed in the store", m.ID.String())
	case !o.hasDigest:
		s.mu.Unlock()
		return errf(storewire.CodeInvalidRequest, "set outboard: object %s has no digest to check the outboard against", m.ID.String())
	case o.hashed():
		s.mu.Unlock()
		return nil
	}
	size, digest := o.dataSize, o.digest
	s.mu.Unlock()
	if _, err := bao.Parse(m.Outboard, size, digest); err != nil {
		return errf(storewire.CodeInvalidRequest, "set outboard: object %s: %v", m.ID.String(), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o2, ok := s.objects[m.ID]; ok && o2 == o && o.outboard == nil && o.digest == digest {
		o.outboard = bytes.Clone(m.Outboard) // m's bytes are the connection's read buffer
	}
	return nil
}
