package trust

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFileRoundTrip(t *testing.T) {
	id, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "node.key")
	if err := WriteKey(path, id, false); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Size() != keyFileSize {
		t.Fatalf("key file mode %04o size %d, want 0600 and %d", st.Mode().Perm(), st.Size(), keyFileSize)
	}
	got, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Public() != id.Public() {
		t.Fatalf("loaded %s, wrote %s", got, id)
	}
	k, err := ParsePublicKey(id.Public().String())
	if err != nil || k != id.Public() {
		t.Fatalf("ParsePublicKey(String()) = %s, %v", k, err)
	}
}

func TestWriteKeyNeverOverwritesUnlessForced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.key")
	a, _ := Generate()
	b, _ := Generate()
	if err := WriteKey(path, a, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteKey(path, b, false); !errors.Is(err, ErrKeyExists) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second WriteKey: %v, want ErrKeyExists naming %s", err, path)
	}
	if got, _ := LoadKey(path); got.Public() != a.Public() {
		t.Fatal("a refused WriteKey changed the key file")
	}
	if err := WriteKey(path, b, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := LoadKey(path); got.Public() != b.Public() {
		t.Fatal("forced WriteKey did not replace the key")
	}
	// Nothing but the key file is left behind, whatever happened.
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the key file", len(ents))
	}
	if err := WriteKey(filepath.Join(dir, "missing", "k"), a, false); err == nil {
		t.Fatal("WriteKey into a missing directory succeeded")
	}
}

func TestLoadKeyErrors(t *testing.T) {
	id, _ := Generate()
	seed := hex.EncodeToString(id.priv.Seed())
	for _, tt := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"world-readable", seed + "\n", 0o644, "is readable by others (mode 0644): chmod 600 "},
		{"group-readable", seed + "\n", 0o640, "(mode 0640)"},
		{"empty", "", 0o600, "malformed: want one line of 64 hex digits"},
		{"short", seed[:62] + "\n", 0o600, "malformed"},
		{"long", seed + "00\n", 0o600, "malformed"},
		{"two lines", seed + "\n" + seed + "\n", 0o600, "malformed"},
		{"not hex", seed[:60] + "zzzz\n", 0o600, "not a hex digit"},
		{"spaces", " " + seed[1:] + "\n", 0o600, "not a hex digit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tt.mode) // past the umask
			_, err := LoadKey(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadKey: %v, want an error naming %s with %q", err, path, tt.want)
			}
			if len(seed) > 8 && strings.Contains(err.Error(), seed[8:20]) {
				t.Fatalf("error echoes the key: %v", err)
			}
		})
	}
	if _, err := LoadKey(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing key file: %v", err)
	}
	if _, err := LoadKey(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory as key file: %v", err)
	}
}

func TestIdentityNeverPrintsPrivateKey(t *testing.T) {
	id, _ := Generate()
	seed := hex.EncodeToString(id.priv.Seed())
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(f, id) + fmt.Sprintf(f, struct{ ID Identity }{id})
		if strings.Contains(out, seed) || strings.Contains(out, seed[:16]) || !strings.Contains(out, id.Public().String()) {
			t.Fatalf("%s prints %q", f, out)
		}
	}
}

// FuzzLoadKey: any file content loads or fails without echoing it.
func FuzzLoadKey(f *testing.F) {
	id, _ := Generate()
	seed := hex.EncodeToString(id.priv.Seed())
	for _, s := range []string{seed + "\n", seed, seed + "\r\n", "", "\n", strings.ToUpper(seed) + "\n", seed[:63] + "g\n"} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "k")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := LoadKey(path)
		if err != nil {
			// The error is one of two fixed sentences about the file:
			// nothing of its content can be in it.
			switch strings.ReplaceAll(err.Error(), path, "FILE") {
			case "private key FILE is malformed: want one line of 64 hex digits (written by plasma keygen)",
				"private key FILE is malformed: it holds a character that is not a hex digit":
			default:
				t.Fatalf("unexpected error %q", err)
			}
			return
		}
		if got.Public() == (PublicKey{}) {
			t.Fatal("loaded an empty identity")
		}
	})
}

func TestPrivateModeRule(t *testing.T) {
	for _, c := range []struct {
		perm      os.FileMode
		file, eid int
		ok        bool
	}{
		{0o600, 1000, 1000, true},
		{0o400, 0, 1000, true},
		{0o640, 1000, 1000, false}, // a user's own key: 0600
		{0o640, 0, 0, false},       // root's own key: 0600
		{0o440, 0, 65532, true},    // a Kubernetes secret with fsGroup
		{0o640, 0, 65532, true},
		{0o660, 0, 65532, false}, // group-writable
		{0o644, 0, 65532, false}, // world-readable
		{0o604, 1000, 1000, false},
	} {
		if got := privateModeOK(c.perm, c.file, c.eid); got != c.ok {
			t.Errorf("mode %04o owned by %d read by %d: ok=%v, want %v", c.perm, c.file, c.eid, got, c.ok)
		}
	}
}
