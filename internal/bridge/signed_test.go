package bridge_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/plasmastream/plasmastream/internal/bridge"
	"github.com/plasmastream/plasmastream/internal/natsconn"
	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/internal/trust"
)

// keyed gives a node the key name and a trust file of the given nodes'
// keys (role read: enough to be served their blobs).
func keyed(t *testing.T, dir string, ids map[string]trust.Identity, name string, trusted ...string) func(*streamserver.Config) {
	key := filepath.Join(dir, name+".key")
	if err := trust.WriteKey(key, ids[name], false); err != nil {
		t.Fatal(err)
	}
	var lines string
	for _, n := range trusted {
		lines += fmt.Sprintf("%s %s read\n", ids[n].Public(), n)
	}
	file := filepath.Join(dir, name+".trust")
	if err := os.WriteFile(file, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *streamserver.Config) { c.PrivateKey, c.TrustedKeys = key, file }
}

// With node keys, announcements are signed and a subscriber acts only on
// those of the keys it trusts: not on an untrusted node's, an unsigned
// one, or one whose fields were changed after signing.
func TestSignedAnnouncements(t *testing.T) {
	dir := t.TempDir()
	ids := map[string]trust.Identity{}
	for _, n := range []string{"a", "b", "c"} {
		id, err := trust.Generate()
		if err != nil {
			t.Fatal(err)
		}
		ids[n] = id
	}
	a := start(t, "a", embedded(t, natsconn.Sites{}), keyed(t, dir, ids, "a", "b"))
	url := a.Server.NATSURL()
	b := start(t, "b", via(url), keyed(t, dir, ids, "b", "a"), subscribe("s.>"))
	c := start(t, "c", via(url), keyed(t, dir, ids, "c", "b"))
	nc := client(t, url)

	untrusted := testutil.Pattern(100<<10, 1)
	idC := put(t, c, untrusted)
	ac := announce(t, nc, "c", idC, "s.from-c")
	if k, ok := ac.Signer(); !ok || k != ids["c"].Public() {
		t.Fatalf("c's announcement is not signed by c: %+v", ac)
	}
	// a's blob announced unsigned, and signed but changed, by a forger.
	data := testutil.Pattern(2<<20, 2)
	id := put(t, a, data)
	forged := bridge.Announcement{Hash: ac.Hash, Size: ac.Size, Subject: "s.forged", Node: "a", Addr: a.Addr}
	msg, _ := json.Marshal(forged)
	nc.Publish("plasma.blobs.s.forged", msg)
	changed := ac
	changed.Subject, changed.Node, changed.Addr = "s.changed", "a", a.Addr
	msg, _ = json.Marshal(changed)
	nc.Publish("plasma.blobs.s.changed", msg)

	aa := announce(t, nc, "a", id, "s.from-a")
	waitFor(t, "b replicating a's blob", func() bool {
		s, _ := blobState(report(t, nc, "b"), aa.Hash.String())
		return s.State == bridge.StateReplicated
	})
	holds(t, b, id, data)
	lacks(t, b, idC)
	if r := report(t, nc, "b"); len(r.Subjects) != 1 || r.Subjects[0].Subject != "s.from-a" {
		t.Errorf("b's report: %+v; want only s.from-a", r)
	}
}
