package streamwire

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// LOCATE's JSON is what it was when a location's digest was a hex string:
// 64 hex digits, left out when unknown.
func TestLocationJSON(t *testing.T) {
	var d [DigestSize]byte
	d[0], d[31] = 0xab, 0xcd
	locs := []Location{{Node: "a", Address: "a:1", Size: 6}, {Node: "b", Address: "b:1", Size: 6, Digest: d}}
	want := `[{"node":"a","address":"a:1","size":6},{"node":"b","address":"b:1","size":6,"digest":"ab` + strings.Repeat("0", 60) + `cd"}]`
	b, err := json.Marshal(locs)
	if err != nil || string(b) != want {
		t.Fatalf("JSON %s %v, want %s", b, err, want)
	}
	var back []Location
	if err := json.Unmarshal(b, &back); err != nil || !slices.Equal(back, locs) {
		t.Fatalf("JSON back: %+v %v", back, err)
	}
}
