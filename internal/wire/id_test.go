package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestIDText(t *testing.T) {
	id := ID{1, 2, 3, 19: 0xff}
	const hexID = "01020300000000000000000000000000000000ff"
	if id.String() != hexID {
		t.Fatalf("String: %s", id)
	}
	if got, err := ParseID(hexID); err != nil || got != id {
		t.Fatalf("ParseID: %v %v", got, err)
	}
	for _, bad := range []string{"", hexID[:38], hexID + "00", strings.Repeat("zz", IDSize)} {
		if _, err := ParseID(bad); err == nil || !strings.Contains(err.Error(), "object id") {
			t.Fatalf("ParseID(%q): %v", bad, err)
		}
	}
	// As a JSON value and as a map key: hex.
	b, err := json.Marshal(map[ID]ID{id: id})
	if want := `{"` + hexID + `":"` + hexID + `"}`; err != nil || string(b) != want {
		t.Fatalf("JSON %s %v, want %s", b, err, want)
	}
	var back map[ID]ID
	if err := json.Unmarshal(b, &back); err != nil || back[id] != id {
		t.Fatalf("JSON back: %v %v", back, err)
	}
}

// The zero Digest is "unknown": "" as text, left out by omitzero, and
// read back from "".
func TestDigestText(t *testing.T) {
	var d Digest
	d[0], d[31] = 0xab, 0xcd
	hexD := "ab" + strings.Repeat("0", 60) + "cd"
	if d.String() != hexD || d.IsZero() || (Digest{}).String() != "" || !(Digest{}).IsZero() {
		t.Fatalf("String %q, zero %q", d, Digest{})
	}
	for s, want := range map[string]Digest{hexD: d, "": {}} {
		if got, err := ParseDigest(s); err != nil || got != want {
			t.Fatalf("ParseDigest(%q): %v %v", s, got, err)
		}
	}
	for _, bad := range []string{hexD[:62], hexD + "00", strings.Repeat("zz", DigestSize)} {
		if _, err := ParseDigest(bad); err == nil || !strings.Contains(err.Error(), "digest") {
			t.Fatalf("ParseDigest(%q): %v", bad, err)
		}
	}
	type rec struct {
		A Digest `json:"a"`
		B Digest `json:"b,omitzero"`
	}
	for v, want := range map[rec]string{
		{}:           `{"a":""}`,
		{A: d, B: d}: `{"a":"` + hexD + `","b":"` + hexD + `"}`,
	} {
		b, err := json.Marshal(v)
		if err != nil || string(b) != want {
			t.Fatalf("JSON of %+v: %s %v, want %s", v, b, err, want)
		}
		var back rec
		if err := json.Unmarshal(b, &back); err != nil || back != v {
			t.Fatalf("JSON %s back: %+v %v", b, back, err)
		}
	}
}
