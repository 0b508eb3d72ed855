package trust

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Role is what a trusted key may do. Roles are ordered: admin allows all
// that write allows, write all that read allows. The zero Role allows
// nothing.
type Role uint8

const (
	RoleNone Role = iota
	RoleRead
	RoleWrite
	RoleAdmin
)

var roleNames = [...]string{RoleNone: "none", RoleRead: "read", RoleWrite: "write", RoleAdmin: "admin"}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// ParseRole reads "read", "write" or "admin".
func ParseRole(s string) (Role, error) {
	for r := RoleRead; r <= RoleAdmin; r++ {
		if roleNames[r] == s {
			return r, nil
		}
	}
	return RoleNone, fmt.Errorf("role %q: want read, write or admin", clip(s))
}

// Set reads a role for a flag: read, write, admin, or none.
func (r *Role) Set(s string) error {
	if s == "none" {
		*r = RoleNone
		return nil
	}
	v, err := ParseRole(s)
	if err != nil {
		return fmt.Errorf("role %q: want read, write, admin or none", clip(s))
	}
	*r = v
	return nil
}

// Type names the flag's value.
func (r *Role) Type() string { return "role" }

// Allows reports whether a key with role r may do what needs role need.
func (r Role) Allows(need Role) bool {
	return need != RoleNone && need <= RoleAdmin && r >= need && r <= RoleAdmin
}

// Entry is one trusted key.
type Entry struct {
	Key  PublicKey
	Name string // unique in its file; appears in logs and errors
	Role Role
}

// Set is a parsed trust file. It is never changed once made, so it can
// be shared between goroutines.
type Set struct {
	name    string // the file it came from
	byKey   map[PublicKey]Entry
	entries []Entry // in file order
}

// Lookup returns the entry for a key the set trusts. A key listed with
// the role none is not trusted: see Refuses.
func (s *Set) Lookup(k PublicKey) (Entry, bool) {
	e, ok := s.byKey[k]
	return e, ok && e.Role != RoleNone
}

// Refuses reports whether the set lists k with the role none: a key to
// refuse even where it would otherwise be trusted (a node registered in
// the cluster directory), so that removing a node from a cluster whose
// nodes trust each other's registrations is one line and a SIGHUP.
func (s *Set) Refuses(k PublicKey) bool {
	e, ok := s.byKey[k]
	return ok && e.Role == RoleNone
}

// Len is the number of trusted keys.
func (s *Set) Len() int { return len(s.entries) }

// Entries returns the entries in file order.
func (s *Set) Entries() []Entry { return slices.Clone(s.entries) }

// Name is the file the set was read from.
func (s *Set) Name() string { return s.name }

// maxLine bounds one line of a trust file.
const maxLine = 4096

// maxName bounds an entry's name.
const maxName = 128

// ParseFile reads a trust file: one `<public key, 64 hex> <name> <role>`
// per line; `#` starts a comment; blank lines are ignored. Every error
// names the file (name) and the line.
func ParseFile(r io.Reader, name string) (*Set, error) {
	b := newBuilder(name)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLine)
	n := 0
	for sc.Scan() {
		n++
		where := fmt.Sprintf("line %d", n)
		e, ok, err := parseLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("trust file %s, %s: %w", name, where, err)
		}
		if !ok {
			continue
		}
		if err := b.add(e, where); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("trust file %s, line %d: longer than %d bytes", name, n+1, maxLine)
		}
		return nil, fmt.Errorf("trust file %s: %w", name, err)
	}
	return b.set, nil
}

// builder makes a Set of entries in order, refusing a key or a name
// listed twice; where names an entry's place in the file ("line 3").
type builder struct {
	set    *Set
	keyAt  map[PublicKey]string
	nameAt map[string]string
}

func newBuilder(file string) *builder {
	return &builder{set: &Set{name: file, byKey: make(map[PublicKey]Entry)}, keyAt: map[PublicKey]string{}, nameAt: map[string]string{}}
}

func (b *builder) add(e Entry, where string) error {
	if prev, dup := b.keyAt[e.Key]; dup {
		return fmt.Errorf("trust file %s, %s: key %s is already on %s", b.set.name, where, e.Key, prev)
	}
	if prev, dup := b.nameAt[e.Name]; dup {
		return fmt.Errorf("trust file %s, %s: name %q is already on %s", b.set.name, where, e.Name, prev)
	}
	b.keyAt[e.Key], b.nameAt[e.Name] = where, where
	b.set.byKey[e.Key] = e
	b.set.entries = append(b.set.entries, e)
	return nil
}

// parseLine reads one line; ok is false for a blank or comment line.
func parseLine(line string) (e Entry, ok bool, err error) {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	f := strings.Fields(line)
	switch {
	case len(f) == 0:
		return e, false, nil
	case len(f) < 3:
		return e, false, fmt.Errorf("want `<public key> <name> <role>`, got %d fields", len(f))
	case len(f) > 3:
		return e, false, fmt.Errorf("want `<public key> <name> <role>`, got %d fields (a name has no spaces)", len(f))
	}
	e, err = makeEntry(f[0], f[1], f[2])
	return e, err == nil, err
}

// makeEntry checks an entry's three fields, as text.
func makeEntry(key, name, role string) (e Entry, err error) {
	if e.Key, err = ParsePublicKey(key); err != nil {
		return e, err
	}
	if name == "" { // only TOML can say so: in text it is a missing field
		return e, errors.New("empty name: each key needs one, for logs and errors")
	}
	if err := checkName(name); err != nil {
		return e, err
	}
	e.Name = name
	if role == "none" {
		e.Role = RoleNone
	} else if e.Role, err = ParseRole(role); err != nil {
		return e, fmt.Errorf("role %q: want read, write, admin or none (refused)", clip(role))
	}
	return e, nil
}

// checkName keeps names printable and short: they go into logs and into
// errors sent to peers.
func checkName(s string) error {
	if len(s) > maxName {
		return fmt.Errorf("name %q: longer than %d bytes", clip(s), maxName)
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-@:/+=", c) >= 0
		if !ok {
			return fmt.Errorf("name %q: use letters, digits and . _ - @ : / + = only", clip(s))
		}
	}
	return nil
}

// ValidName reports whether s can be a name in a trust file.
func ValidName(s string) bool { return checkName(s) == nil }
