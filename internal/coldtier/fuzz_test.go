package coldtier

import (
	"bytes"
	"testing"
)

// FuzzRecord: a record read from the tier (a file anyone with access to
// the directory or bucket could have written) either decodes to a record
// that encodes back to the same bytes or is refused; it never panics.
func FuzzRecord(f *testing.F) {
	f.Add(Record{DataSize: 5, Metadata: []byte("meta"), Persisted: true, CreatedNs: 7}.Marshal())
	f.Add(Record{}.Marshal())
	f.Add([]byte("PLCT"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalRecord(b)
		if err != nil {
			return
		}
		if got := r.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("record %x re-encodes as %x", b, got)
		}
	})
}

func TestRecordRoundTrip(t *testing.T) {
	in := Record{DataSize: 1 << 40, Metadata: []byte{1, 2, 3}, Persisted: true, CreatedNs: -1}
	in.ID[0], in.Digest[31] = 9, 8
	out, err := UnmarshalRecord(in.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != in.ID || out.Digest != in.Digest || out.DataSize != in.DataSize || !bytes.Equal(out.Metadata, in.Metadata) ||
		out.Persisted != in.Persisted || out.CreatedNs != in.CreatedNs {
		t.Fatalf("round trip: %+v, want %+v", out, in)
	}
	for _, bad := range [][]byte{nil, in.Marshal()[:recordHeader-1], append(in.Marshal(), 0)} {
		if _, err := UnmarshalRecord(bad); err == nil {
			t.Errorf("%x decoded without error", bad)
		}
	}
}
