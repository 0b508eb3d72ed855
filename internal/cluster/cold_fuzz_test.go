package cluster

import (
	"encoding/json"
	"testing"
)

// FuzzColdRecord: any value read from etcd under a cold key decodes to a
// record naming a tier or to an error, never a panic; a decoded record
// encodes and decodes to itself.
func FuzzColdRecord(f *testing.F) {
	f.Add("s3%3A%2F%2Fb%2Fp", []byte(`{"tier":"s3://b/p","size":5,"digest":"","node":"a","written":"2026-12-02T10:00:00Z"}`))
	f.Add("x/y", []byte(`{"tier":"file:///c","host":"h"}`))
	f.Add("t", []byte(`{"tier":""}`))
	f.Add("t", []byte(`{"digest":"zz"}`))
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		c, err := decodeColdRecord(key, value)
		if err != nil {
			return
		}
		if c.Tier == "" {
			t.Fatalf("decoded a record without a tier: %+v", c)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeColdRecord(key, b)
		if err != nil || again.Tier != c.Tier || again.Digest != c.Digest || again.Size != c.Size || again.Node != c.Node || !again.Written.Equal(c.Written) {
			t.Fatalf("round trip: %+v -> %s -> %+v (%v)", c, b, again, err)
		}
	})
}
