package storewire

import "testing"

// The flags byte of CreateAndSeal: 0 and 1 mean what the old has_digest
// boolean meant, bit 1 is keep, and any other bit is rejected.
func TestCreateAndSealFlags(t *testing.T) {
	for _, tc := range []struct {
		flags            uint8
		digest, keep, ok bool
	}{
		{0, false, false, true},
		{1, true, false, true},
		{2, false, true, true},
		{3, true, true, true},
		{4, false, false, false},
		{0x81, false, false, false},
	} {
		p := CreateAndSeal{Data: []byte("d")}.Append(nil)
		p[len(p)-DigestSize-1] = tc.flags
		var m CreateAndSeal
		err := m.Decode(p)
		if (err == nil) != tc.ok {
			t.Fatalf("flags %#x: err %v, want ok=%v", tc.flags, err, tc.ok)
		}
		if tc.ok && (m.HasDigest != tc.digest || m.Keep != tc.keep) {
			t.Fatalf("flags %#x: digest %v keep %v, want %v %v", tc.flags, m.HasDigest, m.Keep, tc.digest, tc.keep)
		}
	}
}

// batchWithFlags is a batch of two objects whose second carries flags.
func batchWithFlags(flags uint8) []byte {
	p := CreateAndSealBatch{Objects: []CreateAndSeal{{ID: ID{1}, Data: []byte("a")}, {ID: ID{2}}}}.Append(nil)
	p[len(p)-DigestSize-1] = flags
	return p
}

// A batch checks every object's flags, and counts are bounded before
// anything is allocated for them.
func TestCreateAndSealBatchDecode(t *testing.T) {
	var m CreateAndSealBatch
	if err := m.Decode(batchWithFlags(2)); err != nil || !m.Objects[1].Keep || m.Objects[0].Keep {
		t.Fatalf("keep on the second object: %v, %+v", err, m.Objects)
	}
	if err := m.Decode(batchWithFlags(4)); err == nil {
		t.Fatal("unknown flags of the second object accepted")
	}
	e := Enc{}
	e.U32(MaxBatchObjects)
	if err := m.Decode(e.B); err == nil {
		t.Fatal("a count with no objects behind it accepted")
	}
	e = Enc{}
	e.U32(MaxBatchObjects + 1)
	e.B = append(e.B, make([]byte, (MaxBatchObjects+1)*createAndSealSize)...)
	if err := m.Decode(e.B); err == nil {
		t.Fatal("more than MaxBatchObjects objects accepted")
	}
	var r CreateAndSealBatchReply
	ok := CreateAndSealBatchReply{Results: []BatchResult{{Message: "x"}}}.Append(nil)
	if err := r.Decode(ok); err == nil {
		t.Fatal("an OK result with a message accepted")
	}
}
