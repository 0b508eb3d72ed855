package trust

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// The trust file in TOML: a file whose name ends in ".toml" holds one
// [[key]] table per trusted key, with exactly the fields key, name and
// role, each a string, checked as the text format checks them:
//
//	[[key]]
//	key  = "0d8aa1ea...2b3c"
//	name = "node-a"
//	role = "admin"
//
// Errors name the file and the table's index ("[[key]] #2", counting
// from 1): the TOML decoder does not report the lines of tables.

// maxTOMLFile bounds a TOML trust file (a text one is bounded per line).
const maxTOMLFile = 4 << 20

// IsTOML reports whether a trust file's name says it is TOML.
func IsTOML(path string) bool { return strings.HasSuffix(path, ".toml") }

var tomlFields = []string{"key", "name", "role"}

// ParseTOML reads a trust file in TOML. Every error names the file
// (name) and, for an entry, its index.
func ParseTOML(r io.Reader, name string) (*Set, error) {
	src, err := io.ReadAll(io.LimitReader(r, maxTOMLFile+1))
	if err != nil {
		return nil, fmt.Errorf("trust file %s: %w", name, err)
	}
	if len(src) > maxTOMLFile {
		return nil, fmt.Errorf("trust file %s: larger than %d bytes", name, maxTOMLFile)
	}
	var doc map[string]any
	if _, err := toml.Decode(string(src), &doc); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("trust file %s, line %d: %s", name, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("trust file %s: %w", name, err)
	}
	for k := range doc {
		if k != "key" {
			return nil, fmt.Errorf("trust file %s: unknown field %q: want only [[key]] tables", name, clip(k))
		}
	}
	b := newBuilder(name)
	if doc["key"] == nil {
		return b.set, nil
	}
	tables, ok := doc["key"].([]map[string]any)
	if !ok {
		return nil, fmt.Errorf("trust file %s: key must be [[key]] tables, one per trusted key", name)
	}
	for i, t := range tables {
		where := fmt.Sprintf("[[key]] #%d", i+1)
		e, err := tomlEntry(t)
		if err != nil {
			return nil, fmt.Errorf("trust file %s, %s: %w", name, where, err)
		}
		if err := b.add(e, where); err != nil {
			return nil, err
		}
	}
	return b.set, nil
}

// tomlEntry checks one [[key]] table.
func tomlEntry(t map[string]any) (Entry, error) {
	for k := range t {
		if !slices.Contains(tomlFields, k) {
			return Entry{}, fmt.Errorf("unknown field %q: want key, name and role", clip(k))
		}
	}
	var f [3]string
	for i, k := range tomlFields {
		v, ok := t[k]
		if !ok {
			return Entry{}, fmt.Errorf("missing field %q: want key, name and role", k)
		}
		if f[i], ok = v.(string); !ok {
			return Entry{}, fmt.Errorf("field %q must be a string", k)
		}
	}
	return makeEntry(f[0], f[1], f[2])
}
