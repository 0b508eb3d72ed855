package cluster

import (
	"strings"
	"testing"
)

// FuzzNodeRecord: any value read from etcd under a node key decodes to a
// member (a named node publishing a well-formed key, which the stream
// server then trusts), to a node without a usable key, or to an error,
// never a panic; a member's key is 64 lower-case hex digits, and its
// record encodes and decodes to itself.
func FuzzNodeRecord(f *testing.F) {
	key := strings.Repeat("ab", 32)
	f.Add([]byte(`{"name":"a","address":"10.0.0.1:2021","groups":["g"],"key":"` + key + `"}`))
	f.Add([]byte(`{"name":"a","key":"` + strings.ToUpper(key) + `"}`))
	f.Add([]byte(`{"name":"a","key":"` + key[:63] + `g"}`))
	f.Add([]byte(`{"name":"","key":"` + key + `"}`))
	f.Add([]byte(`{"name":"a"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, value []byte) {
		n, ok, err := parseMember(value)
		if err != nil || !ok {
			if ok {
				t.Fatalf("a member from a record that did not decode: %+v %v", n, err)
			}
			return
		}
		if n.Name == "" || len(n.Key) != 64 || strings.Trim(n.Key, "0123456789abcdef") != "" {
			t.Fatalf("accepted member %+v: want a name and 64 lower-case hex digits", n)
		}
		again, ok, err := parseMember([]byte(nodeRecord(n)))
		if err != nil || !ok || again.Name != n.Name || again.Key != n.Key || again.Address != n.Address {
			t.Fatalf("round trip: %+v -> %+v %v %v", n, again, ok, err)
		}
	})
}
