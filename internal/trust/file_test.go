package trust

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const (
	keyA = "0d8aa1ea3d1a4b6c0e3f4a8a1f1e7c0a6a2f5b1c9d3e4f5a6b7c8d9e0f1a2b3c"
	keyB = "1111111111111111111111111111111111111111111111111111111111111111"
	keyC = "ABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCD"
)

func TestParseFile(t *testing.T) {
	src := "# peers of node-a\n\n" +
		keyA + " node-a admin\n" +
		"   " + keyB + "\tloader.gpu-3   write   # the loader\n" +
		"#" + keyC + " old read\n" +
		keyC + " reader@site2 read\r\n" +
		"   \t  \n"
	s, err := ParseFile(strings.NewReader(src), "peers")
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 || s.Name() != "peers" {
		t.Fatalf("%d entries from %s, want 3", s.Len(), s.Name())
	}
	for _, want := range []struct {
		key, name string
		role      Role
	}{{keyA, "node-a", RoleAdmin}, {keyB, "loader.gpu-3", RoleWrite}, {strings.ToLower(keyC), "reader@site2", RoleRead}} {
		k, _ := ParsePublicKey(want.key)
		e, ok := s.Lookup(k)
		if !ok || e.Name != want.name || e.Role != want.role || e.Key.String() != strings.ToLower(want.key) {
			t.Errorf("Lookup(%s) = %+v, %v; want %s %s", want.key, e, ok, want.name, want.role)
		}
	}
	if es := s.Entries(); es[0].Name != "node-a" || es[2].Name != "reader@site2" {
		t.Errorf("entries not in file order: %v", es)
	}
	unknown, _ := ParsePublicKey(strings.Repeat("22", 32))
	if _, ok := s.Lookup(unknown); ok {
		t.Error("an unlisted key was found")
	}
	if empty, err := ParseFile(strings.NewReader("# nobody yet\n"), "empty"); err != nil || empty.Len() != 0 {
		t.Errorf("a file of comments: %v, %v", empty, err)
	}
}

func TestParseFileErrors(t *testing.T) {
	for _, tt := range []struct {
		name, src, want string
	}{
		{"short key", "abcd n read", `line 1: public key "abcd": want 64 hex digits, got 4 characters`},
		{"bad hex", "\n" + strings.Repeat("zz", 32) + " n read", "line 2: public key"},
		{"odd hex", keyA[:63] + "g n read", "want 64 hex digits"},
		{"unknown role", keyA + " n owner", `line 1: role "owner": want read, write, admin or none (refused)`},
		{"upper-case role", keyA + " n Admin", `role "Admin"`},
		{"extra field", keyA + " n read extra", "line 1: want `<public key> <name> <role>`, got 4 fields"},
		{"name with space", keyA + " my node read", "got 4 fields (a name has no spaces)"},
		{"key only", keyA, "got 1 fields"},
		{"no role", keyA + " n", "got 2 fields"},
		{"comment hides role", keyA + " n #read", "got 2 fields"},
		{"duplicate key", keyA + " a read\n" + keyB + " b read\n" + keyA + " c admin", "line 3: key " + keyA + " is already on line 1"},
		{"duplicate key other case", keyC + " a read\n" + strings.ToLower(keyC) + " b read", "line 2: key"},
		{"duplicate name", keyA + " a read\n\n" + keyB + " a write", `line 3: name "a" is already on line 1`},
		{"bad name", keyA + " n\x01 read", `name "n\x01": use letters`},
		{"long name", keyA + " " + strings.Repeat("n", 129) + " read", "longer than 128 bytes"},
		{"long line", strings.Repeat(" ", maxLine+1), "line 1: longer than 4096 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFile(strings.NewReader(tt.src), "trusted.keys")
			if err == nil || !strings.HasPrefix(err.Error(), "trust file trusted.keys, line ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseFile: %v; want an error naming the file and line with %q", err, tt.want)
			}
		})
	}
}

func TestRoleAllows(t *testing.T) {
	for _, tt := range []struct {
		have, need Role
		want       bool
	}{
		{RoleRead, RoleRead, true}, {RoleRead, RoleWrite, false}, {RoleRead, RoleAdmin, false},
		{RoleWrite, RoleRead, true}, {RoleWrite, RoleWrite, true}, {RoleWrite, RoleAdmin, false},
		{RoleAdmin, RoleRead, true}, {RoleAdmin, RoleWrite, true}, {RoleAdmin, RoleAdmin, true},
		{RoleNone, RoleRead, false}, {RoleAdmin, RoleNone, false}, {Role(9), RoleRead, false}, {RoleAdmin, Role(9), false},
	} {
		if got := tt.have.Allows(tt.need); got != tt.want {
			t.Errorf("%s.Allows(%s) = %v", tt.have, tt.need, got)
		}
	}
	for _, r := range []Role{RoleRead, RoleWrite, RoleAdmin} {
		if p, err := ParseRole(r.String()); p != r || err != nil {
			t.Errorf("ParseRole(%s) = %s, %v", r, p, err)
		}
	}
}

func writeTrust(t *testing.T, path, src string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path+".tmp", 0o644)
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func TestStoreReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trusted.keys")
	writeTrust(t, path, keyA+" a admin\n")
	s, err := LoadStore(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := ParsePublicKey(keyA)
	b, _ := ParsePublicKey(keyB)

	// Lookups run while the file is reloaded: each set is whole.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			set := s.Set()
			_, okA := set.Lookup(a)
			_, okB := set.Lookup(b)
			if okA == okB {
				t.Errorf("a mixed set: a %v b %v", okA, okB)
				return
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	writeTrust(t, path, keyB+" b read\n")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Lookup(a); ok {
		t.Fatal("a removed key is still trusted after Reload")
	}
	if e, ok := s.Lookup(b); !ok || e.Name != "b" {
		t.Fatal("an added key is not trusted after Reload")
	}

	writeTrust(t, path, keyB+" b read\n"+keyA+" a superuser\n")
	err = s.Reload()
	if err == nil || !strings.Contains(err.Error(), "line 2: role \"superuser\"") || !strings.Contains(err.Error(), "still using the 1 keys loaded before") {
		t.Fatalf("Reload of a bad file: %v", err)
	}
	if _, ok := s.Lookup(b); !ok {
		t.Fatal("a failed Reload dropped the set in use")
	}
	os.Remove(path)
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("Reload of a missing file: %v", err)
	}
	if _, ok := s.Lookup(b); !ok {
		t.Fatal("a failed Reload dropped the set in use")
	}
}

func TestStoreRefusesFileOthersCanWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trusted.keys")
	writeTrust(t, path, keyA+" a admin\n")
	os.Chmod(path, 0o666)
	if _, err := LoadStore(path); err == nil || !strings.Contains(err.Error(), "is writable by others (mode 0666): chmod go-w "+path) {
		t.Fatalf("LoadStore of a 0666 file: %v", err)
	}
	if _, err := LoadStore(filepath.Dir(path)); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("LoadStore of a directory: %v", err)
	}
}

// FuzzParseFile: any input parses or fails with the file's name, never
// panics, and what parses reads back the same when written out again.
func FuzzParseFile(f *testing.F) {
	for _, s := range []string{
		"",
		"# comment only\n",
		keyA + " node-a admin\n" + keyB + " b write # c\n\n" + keyC + " c read\r\n",
		keyA + " a read\n" + keyA + " b read\n",
		keyA + " a read\n" + keyB + " a read\n",
		keyA + " a owner\n",
		keyA + " a none\n" + keyB + " b read\n",
		keyA + " a read extra\n",
		"zz" + keyA[2:] + " a read\n",
		keyA + "\ta\tread",
		keyA + " a#x read\n",
		strings.Repeat("x", 5000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := ParseFile(strings.NewReader(src), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "trust file fuzz") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		var out strings.Builder
		for _, e := range s.Entries() {
			fmt.Fprintf(&out, "%s %s %s\n", e.Key, e.Name, e.Role)
		}
		again, err := ParseFile(strings.NewReader(out.String()), "again")
		if err != nil {
			t.Fatalf("written-out set does not parse: %v\n%s", err, out.String())
		}
		if again.Len() != s.Len() {
			t.Fatalf("%d entries, %d after a round trip", s.Len(), again.Len())
		}
		for _, e := range s.Entries() {
			g, ok := again.Lookup(e.Key)
			if e.Role == RoleNone {
				ok, g = !ok && again.Refuses(e.Key), e
			}
			if !ok || g != e {
				t.Fatalf("entry %+v became %+v (%v)", e, g, ok)
			}
		}
	})
}

// A key listed with the role none is refused: Lookup does not find it,
// Refuses says so (the stream server then refuses it even when the
// cluster directory would trust it); the TOML form reads the same.
func TestParseFileRefusedKey(t *testing.T) {
	ka, _ := ParsePublicKey(keyA)
	kb, _ := ParsePublicKey(keyB)
	text, err := ParseFile(strings.NewReader(keyA+" node-d none # removed\n"+keyB+" reader read\n"), "peers")
	if err != nil {
		t.Fatal(err)
	}
	toml, err := ParseTOML(strings.NewReader("[[key]]\nkey = \""+keyA+"\"\nname = \"node-d\"\nrole = \"none\"\n"+
		"[[key]]\nkey = \""+keyB+"\"\nname = \"reader\"\nrole = \"read\"\n"), "peers.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Set{text, toml} {
		if e, ok := s.Lookup(ka); ok || !s.Refuses(ka) {
			t.Errorf("%s: a key of role none: Lookup %+v %v, Refuses %v; want refused", s.Name(), e, ok, s.Refuses(ka))
		}
		if e, ok := s.Lookup(kb); !ok || e.Role != RoleRead || s.Refuses(kb) {
			t.Errorf("%s: a read key: %+v %v, Refuses %v", s.Name(), e, ok, s.Refuses(kb))
		}
	}
}
