package streamcli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/testnode"
	"github.com/plasmastream/plasmastream/internal/trust"
)

// plasma-stream-cli --key FILE --server-key HEX talks mutual TLS to a
// keyed server, with its key's role; without a key it is refused.
func TestCLIKey(t *testing.T) {
	dir := t.TempDir()
	keys := map[string]trust.Identity{}
	for _, n := range []string{"server", "reader"} {
		id, err := trust.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if err := trust.WriteKey(filepath.Join(dir, n), id, false); err != nil {
			t.Fatal(err)
		}
		keys[n] = id
	}
	tf := filepath.Join(dir, "trust")
	if err := os.WriteFile(tf, []byte(fmt.Sprintf("%s reader read\n", keys["reader"].Public())), 0o600); err != nil {
		t.Fatal(err)
	}
	n := testnode.Start(t, "keyed", 16<<20, func(c *streamserver.Config) {
		c.PrivateKey, c.TrustedKeys = filepath.Join(dir, "server"), tf
	})
	withKey := []string{"--key", filepath.Join(dir, "reader"), "--server-key", keys["server"].Public().String()}

	out, errOut, code := cli(t, n.Addr, "PING\nTAKE "+n.Addr+" 0102030405060708090a0b0c0d0e0f1011121314\nSTAT\n", withKey...)
	lines := strings.Split(out, "\n")
	if code != 1 || len(lines) < 3 || !strings.HasPrefix(lines[0], "ok") ||
		!strings.Contains(lines[1], "not permitted: key reader has role read; SYNC needs write") || !strings.HasPrefix(lines[2], "ok") {
		t.Fatalf("exit %d, out %q, err %q", code, out, errOut)
	}
	if _, errOut, code := cli(t, n.Addr, "PING\n"); code != 1 || !strings.Contains(errOut, "cannot connect") {
		t.Fatalf("without a key: exit %d, err %q", code, errOut)
	}
	wrongServer := []string{"--key", filepath.Join(dir, "reader"), "--server-key", keys["reader"].Public().String()}
	if _, errOut, code := cli(t, n.Addr, "PING\n", wrongServer...); code != 1 || !strings.Contains(errOut, "does not prove a trusted key") {
		t.Fatalf("pinning another server key: exit %d, err %q", code, errOut)
	}
	if _, errOut, code := cli(t, n.Addr, "PING\n", withKey[:2]...); code != 1 || !strings.Contains(errOut, "--key and --server-key go together") {
		t.Fatalf("--key alone: exit %d, err %q", code, errOut)
	}
}
