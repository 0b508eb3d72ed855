package plasmacmd_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/plasmastream/plasmastream/internal/testutil"
)

// keyCLI runs plasma in dir, without a store: key commands need none.
func keyCLI(t *testing.T, dir string, args ...string) (stdout, stderr string, ok bool) {
	t.Helper()
	cmd := exec.Command(filepath.Join(testutil.Binaries(t), "plasma"), args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err == nil
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}\n$`)

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "node.key")
	pub, errs, ok := keyCLI(t, dir, "keygen", "-o", file, "--name", "gpu-1")
	if !ok || !hex64.MatchString(pub) {
		t.Fatalf("keygen printed %q, stderr %q", pub, errs)
	}
	if !strings.Contains(errs, strings.TrimSpace(pub)+" gpu-1 read\n") || !strings.Contains(errs, file) {
		t.Fatalf("keygen's stderr %q lacks the trust file line or the file", errs)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, st.Mode())
	}
	private, _ := os.ReadFile(file)
	if strings.Contains(pub+errs, strings.TrimSpace(string(private))) {
		t.Fatal("keygen printed the private key")
	}
	if shown, errs, ok := keyCLI(t, dir, "key", "show", file); !ok || shown != pub {
		t.Fatalf("key show printed %q (%s), keygen %q", shown, errs, pub)
	}

	// An existing key is never replaced without --force.
	if out, errs, ok := keyCLI(t, dir, "keygen", "-o", file); ok || out != "" || !strings.Contains(errs, "already exists") || !strings.Contains(errs, "--force") {
		t.Fatalf("keygen over a key: ok %v, stdout %q, stderr %q", ok, out, errs)
	}
	if again, _ := os.ReadFile(file); !bytes.Equal(again, private) {
		t.Fatal("a refused keygen changed the key file")
	}
	newPub, errs, ok := keyCLI(t, dir, "keygen", "-o", file, "--force")
	if !ok || newPub == pub || !hex64.MatchString(newPub) {
		t.Fatalf("keygen --force printed %q (%s)", newPub, errs)
	}
	if shown, _, _ := keyCLI(t, dir, "key", "show", file); shown != newPub {
		t.Fatalf("after --force key show printed %q, keygen %q", shown, newPub)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("keygen left %d files, want only the key", len(ents))
	}
}

func TestKeygenDefaultFile(t *testing.T) {
	dir := t.TempDir()
	pub, errs, ok := keyCLI(t, dir, "keygen")
	if !ok {
		t.Fatal(errs)
	}
	if shown, errs, _ := keyCLI(t, dir, "key", "show", "plasma.key"); shown != pub {
		t.Fatalf("keygen without -o: key show plasma.key printed %q (%s), want %q", shown, errs, pub)
	}
}

func TestKeyErrors(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	keyCLI(t, dir, "keygen", "-o", open)
	os.Chmod(open, 0o644)
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("secretsecret\n"), 0o600)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"key", "show", open}, "private key " + open + " is readable by others (mode 0644): chmod 600 " + open},
		{[]string{"key", "show", bad}, "private key " + bad + " is malformed"},
		{[]string{"key", "show", filepath.Join(dir, "none")}, "no such file"},
		{[]string{"keygen", "-o", "-"}, "a private key is never written to stdout"},
		{[]string{"keygen", "-o", filepath.Join(dir, "k2"), "--name", "a b"}, `--name "a b"`},
		{[]string{"keygen", "-o", filepath.Join(dir, "missing", "k")}, "no such file"},
	} {
		out, errs, ok := keyCLI(t, dir, tt.args...)
		errs = strings.TrimSpace(errs)
		if ok || out != "" || !strings.HasPrefix(errs, "plasma: ") || !strings.Contains(errs, tt.want) || strings.Contains(errs, "secret") || strings.Count(errs, "\n") > 0 {
			t.Errorf("plasma %v: ok %v, stdout %q, stderr %q; want one line with %q", tt.args, ok, out, errs, tt.want)
		}
	}
}
