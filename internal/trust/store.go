package trust

import (
	"fmt"
	"os"
	"sync/atomic"
)

// Store holds a trust file's current Set. Lookups are lock-free and see
// either the old set or the new one, never a mix; Reload (on SIGHUP)
// replaces it only with a file that parses.
type Store struct {
	path string
	set  atomic.Pointer[Set]
}

// LoadStore reads the trust file at path.
func LoadStore(path string) (*Store, error) {
	s := &Store{path: path}
	set, err := readFile(path)
	if err != nil {
		return nil, err
	}
	s.set.Store(set)
	return s, nil
}

// Path is the trust file's path.
func (s *Store) Path() string { return s.path }

// Set returns the current set.
func (s *Store) Set() *Set { return s.set.Load() }

// Lookup finds a key in the current set; it suits VerifyPinned.
func (s *Store) Lookup(k PublicKey) (Entry, bool) { return s.set.Load().Lookup(k) }

// Refuses reports whether the current set lists k with the role none.
func (s *Store) Refuses(k PublicKey) bool { return s.set.Load().Refuses(k) }

// Reload reads the file again. On error the set in use stays, and the
// error says so.
func (s *Store) Reload() error {
	set, err := readFile(s.path)
	if err != nil {
		return fmt.Errorf("%w; still using the %d keys loaded before", err, s.set.Load().Len())
	}
	s.set.Store(set)
	return nil
}

// readFile parses a trust file, refusing one that others may write:
// whoever can write it can make their key trusted.
func readFile(path string) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trust file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("trust file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("trust file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("trust file %s is writable by others (mode %04o): chmod go-w %s", path, perm, path)
	}
	if IsTOML(path) {
		return ParseTOML(f, path)
	}
	return ParseFile(f, path)
}
