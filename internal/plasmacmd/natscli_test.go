package plasmacmd_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"lukechampine.com/blake3"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// natsTool runs the standard NATS tool (natscli) against url and returns
// what it printed: the reply's body, with --raw.
func natsTool(t *testing.T, url string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testutil.NATSCLI(t), append([]string{"--server", url, "--timeout", "1m"}, args...)...)
	home := t.TempDir() // no contexts of the user's
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "NATS_CONTEXT=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nats %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// The walkthrough of rhio, with the standard NATS tool and our node:
// "nats request plasma.import PATH" imports a file of the node's machine
// under its BLAKE3 address and replies {id, hash, size}; locate and stat
// answer about it; errors are replies naming the cause, and leave nothing
// in the store.
func TestImportWithTheNATSTool(t *testing.T) {
	listen := testutil.FreeAddr(t)
	url := "nats://" + listen
	n := testutil.StartNode(t, "n1", "64MiB", "--nats", "embedded", "--nats-listen", listen, "--nats-dir", t.TempDir())
	dir := t.TempDir()
	path := filepath.Join(dir, "sloth.jpg")
	data := testutil.Pattern(5<<20+1, 11)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var im struct {
		ID, Hash string
		Size     int
	}
	out := natsTool(t, url, "request", "--raw", "plasma.import", path)
	if err := json.Unmarshal([]byte(out), &im); err != nil {
		t.Fatalf("nats request plasma.import printed %q: %v", out, err)
	}
	sum := blake3.Sum256(data)
	if im.Hash != hex.EncodeToString(sum[:]) || im.ID != im.Hash[:40] || im.Size != len(data) {
		t.Fatalf("reply %s; want hash %x, its first 40 digits as id, size %d", out, sum, len(data))
	}
	st := testutil.StoreClient(t, n.Socket)
	id, _ := store.ParseObjectID(im.ID)
	obj, err := st.GetVerified(context.Background(), id, 0)
	if err != nil || string(obj.Data) != string(data) {
		t.Fatalf("the imported object: %v", err)
	}
	st.Release(context.Background(), id)

	out = natsTool(t, url, "request", "--raw", "plasma.locate", im.Hash)
	if !strings.Contains(out, `"node":"n1"`) || !strings.Contains(out, `"addr":"`+n.Addr+`"`) {
		t.Errorf("nats request plasma.locate: %s; want n1 at %s", out, n.Addr)
	}
	out = natsTool(t, url, "request", "--raw", "plasma.stat", im.ID)
	if !strings.Contains(out, `"hash":"`+im.Hash+`"`) || !strings.Contains(out, fmt.Sprintf(`"size":%d`, len(data))) {
		t.Errorf("nats request plasma.stat: %s", out)
	}

	huge := filepath.Join(dir, "huge")
	if err := os.WriteFile(huge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(huge, 65<<20) // sparse, more than the store holds
	for payload, want := range map[string]string{
		filepath.Join(dir, "missing.jpg"): "no such file on this node's machine",
		huge:                              "too large: the file has 68157440 bytes, the store holds at most",
		"sloth.jpg":                       "give an absolute path",
	} {
		if out := natsTool(t, url, "request", "--raw", "plasma.import", payload); !strings.Contains(out, want) {
			t.Errorf("nats request plasma.import %s: %s; want an error saying %q", payload, out, want)
		}
	}
	if objs, err := st.List(context.Background()); err != nil || len(objs) != 1 {
		t.Errorf("the store after the failed imports: %v (err %v); want only the imported object", objs, err)
	}
}
