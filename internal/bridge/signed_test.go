package bridge_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/plasmastream/plasmastream/internal/bridge"
	"github.com/plasmastream/plasmastream/internal/natsconn"
	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/store"
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

// identities are new node keys for names.
func identities(t *testing.T, names ...string) map[string]trust.Identity {
	ids := map[string]trust.Identity{}
	for _, n := range names {
		id, err := trust.Generate()
		if err != nil {
			t.Fatal(err)
		}
		ids[n] = id
	}
	return ids
}

// With node keys, announcements are signed and a subscriber acts only on
// those of the keys it trusts: not on an untrusted node's, an unsigned
// one, or one whose fields were changed after signing.
func TestSignedAnnouncements(t *testing.T) {
	dir, ids := t.TempDir(), identities(t, "a", "b", "c")
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

// A subscription with publisher keys ("SUBJECT KEY") acts only on
// announcements signed by those keys, even from nodes the trust file
// holds, while the node's other subscriptions take every trusted
// publisher. On a node without keys, such a subscription still refuses
// unsigned announcements.
func TestSubscriptionPublishers(t *testing.T) {
	dir, ids := t.TempDir(), identities(t, "a", "b", "c")
	a := start(t, "a", embedded(t, natsconn.Sites{}), keyed(t, dir, ids, "a", "b"))
	url := a.Server.NATSURL()
	c := start(t, "c", via(url), keyed(t, dir, ids, "c", "b"))
	metricsAddr := testutil.FreeAddr(t)
	b := start(t, "b", via(url), keyed(t, dir, ids, "b", "a", "c"), subscribe("s.> "+ids["a"].Public().String(), "t.>"),
		func(c *streamserver.Config) { c.MetricsAddr = metricsAddr })
	// d has no keys; e announces unsigned.
	d := start(t, "d", via(url), subscribe("u.> "+ids["a"].Public().String(), "v.>"))
	e := start(t, "e", via(url))
	nc := client(t, url)

	// b's own announcement comes back to it on s.>, then c's: b skips its
	// own (neither acted on nor refused) and refuses c's, for c is trusted
	// but not a publisher of s.>.
	announce(t, nc, "b", put(t, b, testutil.Pattern(80<<10, 6)), "s.b")
	fromC := testutil.Pattern(100<<10, 1)
	idFromC := put(t, c, fromC)
	announce(t, nc, "c", idFromC, "s.c")
	refused := `plasma_bridge_announcements_total{result="refused"}`
	// b serves its metrics over TLS to the keys it trusts: a's, here.
	https, err := trust.TLSConfig(ids["a"], func(k trust.PublicKey) (trust.Entry, bool) { return trust.Entry{}, k == ids["b"].Public() })
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b refusing c's announcement on s.c", func() bool { return metric(t, https, metricsAddr, refused) >= 1 })
	if n := metric(t, https, metricsAddr, refused); n != 1 {
		t.Errorf("b counts %v refused announcements; want 1, c's (its own is not refused)", n)
	}
	inT := testutil.Pattern(120<<10, 2)
	idInT := put(t, c, inT)
	announce(t, nc, "c", idInT, "t.c")
	fromA := testutil.Pattern(140<<10, 3)
	idFromA := put(t, a, fromA)
	announce(t, nc, "a", idFromA, "s.a")
	for _, id := range []store.ObjectID{idInT, idFromA} {
		waitFor(t, "b replicating "+id.String(), func() bool {
			ok, _ := testutil.StoreClient(t, b.Socket).Contains(context.Background(), id)
			return ok
		})
	}
	holds(t, b, idInT, inT)
	holds(t, b, idFromA, fromA)
	lacks(t, b, idFromC)
	var subjects []string
	for _, s := range report(t, nc, "b").Subjects {
		subjects = append(subjects, s.Subject)
	}
	if fmt.Sprint(subjects) != "[s.a t.c]" {
		t.Errorf("b's report has subjects %v; want s.a and t.c, not c's s.c", subjects)
	}

	unsigned := testutil.Pattern(90<<10, 4)
	idUnsigned := put(t, e, unsigned)
	announce(t, nc, "e", idUnsigned, "u.e") // refused: u.> wants a's signature
	announce(t, nc, "e", idUnsigned, "v.e") // accepted: v.> takes anyone's
	waitFor(t, "d replicating e's blob on v.e", func() bool {
		ok, _ := testutil.StoreClient(t, d.Socket).Contains(context.Background(), idUnsigned)
		return ok
	})
	if r := report(t, nc, "d"); len(r.Subjects) != 1 || r.Subjects[0].Subject != "v.e" {
		t.Errorf("d's report: %+v; want only v.e (the unsigned announcement on u.e refused)", r)
	}
}

// metric is the value of a Prometheus series (name{labels}) served over
// TLS at addr, 0 if it is absent.
func metric(t *testing.T, tlsConfig *tls.Config, addr, series string) float64 {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	resp, err := c.Get("https://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", series, line)
			}
			return f
		}
	}
	return 0
}
