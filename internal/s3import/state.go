package s3import

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/plasmastream/plasmastream/internal/fsutil"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// stateVersion is the version of the state file's format.
const stateVersion = 1

// State is what a bucket watch has seen under its prefix: the file
// behind --state, JSON.
type State struct {
	Version int    `json:"version"`
	Bucket  string `json:"bucket"`
	Prefix  string `json:"prefix"`
	// Objects is keyed by the S3 key (which starts with Prefix).
	Objects map[string]Seen `json:"objects"`
}

// Seen is the version of an S3 object the watch has dealt with.
type Seen struct {
	ETag string `json:"etag"`
	Size uint64 `json:"size"`
	// Hash is the BLAKE3 hash it was imported under (its content id is
	// the first 20 bytes); empty: it was there before a watch with
	// --new-only started, and was not imported.
	Hash string `json:"hash,omitempty"`
	// Unannounced: imported, but its announcement failed; retried.
	Unannounced bool `json:"unannounced,omitempty"`
}

// NewState is the state of a watch that has seen nothing yet.
func NewState(bucket, prefix string) *State {
	return &State{Version: stateVersion, Bucket: bucket, Prefix: prefix, Objects: map[string]Seen{}}
}

// DecodeState reads a state file's bytes. Anything but a state this
// package writes is refused with the reason.
func DecodeState(b []byte) (*State, error) {
	var s State
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil {
		return nil, fmt.Errorf("not a watch state: %w", err)
	}
	if d.More() {
		return nil, errors.New("not a watch state: more than one JSON value")
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("state version %d, this plasma reads version %d", s.Version, stateVersion)
	}
	if s.Bucket == "" {
		return nil, errors.New("no bucket")
	}
	if s.Objects == nil {
		s.Objects = map[string]Seen{}
	}
	for k, o := range s.Objects {
		if !strings.HasPrefix(k, s.Prefix) || k == "" {
			return nil, fmt.Errorf("key %q is not under the prefix %q", clip(k), clip(s.Prefix))
		}
		if o.Hash != "" {
			if h, err := wire.ParseDigest(o.Hash); err != nil || h.String() != o.Hash {
				return nil, fmt.Errorf("key %q: hash %q is not 64 lowercase hex digits", clip(k), clip(o.Hash))
			}
		}
	}
	return &s, nil
}

// Marshal is the state's file content.
func (s *State) Marshal() []byte {
	b, _ := json.Marshal(s) // only strings, numbers and booleans: cannot fail
	return append(b, '\n')
}

// LoadState reads the state file at path; a missing file is (nil, nil):
// the watch's first run.
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	s, err := DecodeState(b)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w; move it away to start afresh (the watch then imports what is in the bucket again, or only new objects with --new-only)", path, err)
	}
	return s, nil
}

// SaveState replaces the file at path with s atomically: a temporary
// file beside it, fsynced, renamed over it, and the directory fsynced.
// A crash at any point leaves the old state or the new one.
func SaveState(path string, s *State) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, s.Marshal()); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	return nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
