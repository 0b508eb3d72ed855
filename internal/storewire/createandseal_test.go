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
