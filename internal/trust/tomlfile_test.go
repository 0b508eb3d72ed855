package trust

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tomlEntryText(key, name, role string) string {
	return fmt.Sprintf("[[key]]\nkey = %q\nname = %q\nrole = %q\n\n", key, name, role)
}

func TestParseTOML(t *testing.T) {
	src := "# peers of node-a\n" + tomlEntryText(keyA, "node-a", "admin") + tomlEntryText(keyC, "reader@site2", "read")
	s, err := ParseTOML(strings.NewReader(src), "peers.toml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 {
		t.Fatalf("%d entries, want 2", s.Len())
	}
	k, _ := ParsePublicKey(keyC)
	if e, ok := s.Lookup(k); !ok || e.Name != "reader@site2" || e.Role != RoleRead {
		t.Fatalf("Lookup(keyC) = %+v, %v", e, ok)
	}
	if s, err := ParseTOML(strings.NewReader("# nobody\n"), "empty.toml"); err != nil || s.Len() != 0 {
		t.Fatalf("an empty file: %v, %v", s, err)
	}
}

func TestParseTOMLErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"syntax", "[[key]]\nkey = \n", "trust file f.toml, line 2:"},
		{"unknown field", tomlEntryText(keyA, "a", "read") + "[[key]]\nkey = \"" + keyB + "\"\nname = \"b\"\nrole = \"read\"\ncolour = \"red\"\n", `f.toml, [[key]] #2: unknown field "colour"`},
		{"missing field", "[[key]]\nkey = \"" + keyA + "\"\nname = \"a\"\n", `f.toml, [[key]] #1: missing field "role"`},
		{"not a string", "[[key]]\nkey = \"" + keyA + "\"\nname = 7\nrole = \"read\"\n", `[[key]] #1: field "name" must be a string`},
		{"duplicate key", tomlEntryText(keyA, "a", "read") + tomlEntryText(keyB, "b", "read") + tomlEntryText(keyA, "c", "admin"), "[[key]] #3: key " + keyA + " is already on [[key]] #1"},
		{"duplicate name", tomlEntryText(keyA, "a", "read") + tomlEntryText(keyB, "a", "write"), `[[key]] #2: name "a" is already on [[key]] #1`},
		{"bad key", tomlEntryText("abcd", "a", "read"), `[[key]] #1: public key "abcd": want 64 hex digits`},
		{"bad role", tomlEntryText(keyA, "a", "owner"), `[[key]] #1: role "owner"`},
		{"bad name", tomlEntryText(keyA, "a b", "read"), `[[key]] #1: name "a b"`},
		{"empty name", tomlEntryText(keyA, "", "read"), `[[key]] #1: empty name`},
		{"top-level field", "version = 2\n" + tomlEntryText(keyA, "a", "read"), `f.toml: unknown field "version"`},
		{"key not tables", "key = \"" + keyA + "\"\n", "key must be [[key]] tables"},
	} {
		_, err := ParseTOML(strings.NewReader(tc.src), "f.toml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

// A .toml trust file loads, reloads and is refused when others may write
// it, as a text one.
func TestStoreTOML(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trusted.toml")
	write := func(src string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(p, []byte(src), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write(tomlEntryText(keyA, "a", "read"), 0o600)
	s, err := LoadStore(p)
	if err != nil {
		t.Fatal(err)
	}
	write(tomlEntryText(keyA, "a", "read")+tomlEntryText(keyB, "b", "admin"), 0o600)
	if err := s.Reload(); err != nil || s.Set().Len() != 2 {
		t.Fatalf("reload: %v, %d keys", err, s.Set().Len())
	}
	write("[[key]]\nkey = 1\n", 0o600)
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "still using the 2 keys") {
		t.Fatalf("a bad reload: %v", err)
	}
	write(tomlEntryText(keyA, "a", "read"), 0o666)
	if _, err := LoadStore(p); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Fatalf("a file others may write: %v", err)
	}
}

// FuzzParseTOML: any input parses or fails with the file's name, never
// panics, and what parses reads back the same in the text format.
func FuzzParseTOML(f *testing.F) {
	for _, s := range []string{
		"",
		"# comment only\n",
		tomlEntryText(keyA, "node-a", "admin") + tomlEntryText(keyB, "b", "write"),
		tomlEntryText(keyA, "a", "read") + tomlEntryText(keyA, "b", "read"),
		"[[key]]\nkey = 1\n",
		"[key]\nkey = \"x\"\n",
		"key = [{key = \"" + keyA + "\", name = \"a\", role = \"read\"}]\n",
		"[[key]]\nkey = \"" + keyA + "\"\nname = \"a\"\nrole = \"read\"\nx = [1, 2]\n",
		"a.b.c = 1\n[[key.sub]]\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := ParseTOML(strings.NewReader(src), "fuzz")
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
			t.Fatalf("written-out set: %d entries of %d", again.Len(), s.Len())
		}
	})
}
