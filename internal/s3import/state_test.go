package s3import

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzState: a state file (anyone who can write the file could have
// written it) decodes to a state whose encoding decodes to the same
// state, or is refused; it never panics.
func FuzzState(f *testing.F) {
	s := NewState("bucket", "in/")
	s.Objects["in/a"] = Seen{ETag: "e1", Size: 5, Hash: strings.Repeat("ab", 32)}
	s.Objects["in/b"] = Seen{ETag: "e2", Size: 0, Unannounced: true}
	f.Add(s.Marshal())
	f.Add(NewState("b", "").Marshal())
	f.Add([]byte(`{"version":1,"bucket":"b","prefix":"p","objects":{"q":{}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeState(b)
		if err != nil {
			return
		}
		enc := s.Marshal()
		s2, err := DecodeState(enc)
		if err != nil {
			t.Fatalf("state %q re-encodes as %q, which is refused: %v", b, enc, err)
		}
		if got := s2.Marshal(); !bytes.Equal(got, enc) {
			t.Fatalf("state %q: encodings differ:\n%s\n%s", b, enc, got)
		}
	})
}

func TestStateRefused(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, "not a watch state"},
		{`{"version":2,"bucket":"b"}`, "state version 2"},
		{`{"version":1}`, "no bucket"},
		{`{"version":1,"bucket":"b","prefix":"in/","objects":{"out/x":{}}}`, "not under the prefix"},
		{`{"version":1,"bucket":"b","objects":{"x":{"hash":"00"}}}`, "64 lowercase hex"},
		{`{"version":1,"bucket":"b","extra":1}`, "unknown field"},
		{`{"version":1,"bucket":"b"} {}`, "more than one"},
	} {
		if _, err := DecodeState([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeState(%s): %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

// SaveState replaces the file whole and leaves no temporary file.
func TestSaveState(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "state.json")
	s := NewState("b", "p/")
	for i, etag := range []string{"one", "two"} {
		s.Objects["p/k"] = Seen{ETag: etag, Size: uint64(i)}
		if err := SaveState(path, s); err != nil {
			t.Fatal(err)
		}
		got, err := LoadState(path)
		if err != nil || got.Objects["p/k"].ETag != etag {
			t.Fatalf("LoadState after saving %q: %+v, %v", etag, got, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the state file", len(ents))
	}
	if s, err := LoadState(filepath.Join(dir, "none")); s != nil || err != nil {
		t.Fatalf("LoadState of a missing file: %v, %v; want nil, nil", s, err)
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, err := LoadState(path); err == nil || !strings.Contains(err.Error(), "move it away") {
		t.Fatalf("LoadState of garbage: %v", err)
	}
}
