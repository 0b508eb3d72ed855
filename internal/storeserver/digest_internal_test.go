package storeserver

import (
	"bytes"
	"testing"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// The background digest job of an object that was deleted must not hash
// a later object created under the same id: that one has its own job. It
// once did (jobs named ids), pinning a just-received object with the
// hasher's reference while its client deleted it.
func TestDigestJobOfADeletedObjectSkipsItsSuccessor(t *testing.T) {
	const size = 64 << 10 // over one group: hashing also builds an outboard
	s := newState(make([]byte, 1<<20), 1<<20, 1<<20)
	c := newClient(1)
	oid := storewire.ID{1, 2, 3}
	if err := s.createAndSeal(c, &storewire.CreateAndSeal{ID: oid, Data: bytes.Repeat([]byte{7}, size)}); err != nil {
		t.Fatal(err)
	}
	first := <-s.digestQ
	if codes := s.del([]storewire.ID{oid}); codes[0] != storewire.CodeOK {
		t.Fatalf("delete: code %v", codes[0])
	}
	vouched := [32]byte{9} // not the data's digest: hashing would replace it
	if err := s.createAndSeal(c, &storewire.CreateAndSeal{ID: oid, Data: bytes.Repeat([]byte{8}, size), HasDigest: true, Digest: vouched}); err != nil {
		t.Fatal(err)
	}
	s.runDigestJob(first)
	s.mu.Lock()
	o := s.objects[oid]
	hashed := o.outboard != nil || o.digest != vouched
	s.mu.Unlock()
	if hashed {
		t.Fatal("the deleted object's digest job hashed the new object of the same id")
	}
	second := <-s.digestQ
	s.runDigestJob(second)
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.outboard == nil || o.digest == vouched {
		t.Fatal("the new object's own digest job did not hash it")
	}
}
