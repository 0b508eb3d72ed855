package streamserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/activity"
	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/testnode"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

func httpGet(cfg *tls.Config, url string) (int, string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer c.CloseIdleConnections()
	r, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b), nil
}

// state is the part of /api/state the tests read.
type state struct {
	Sections []struct {
		Name  string          `json:"name"`
		Data  json.RawMessage `json:"data"`
		Error string          `json:"error"`
	} `json:"sections"`
}

func transfers(t *testing.T, httpAddr string) activity.Snapshot {
	t.Helper()
	code, body, err := httpGet(nil, "http://"+httpAddr+"/api/state")
	if err != nil || code != 200 {
		t.Fatalf("/api/state: %d %v", code, err)
	}
	var st state
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Sections {
		if s.Name == "transfers" {
			var snap activity.Snapshot
			if err := json.Unmarshal(s.Data, &snap); err != nil {
				t.Fatal(err)
			}
			return snap
		}
	}
	t.Fatalf("no transfers section in %s", body)
	return activity.Snapshot{}
}

// The dashboard's state records the transfers of both ends of a SYNC,
// with the outcome of each object, and its failures as errors; the API is
// read-only and says why it cannot locate on a standalone node.
func TestDashboardRecordsTransfers(t *testing.T) {
	withHTTP := func(addr string) func(*streamserver.Config) {
		return func(c *streamserver.Config) { c.MetricsAddr = addr }
	}
	aHTTP, bHTTP := testutil.FreeAddr(t), testutil.FreeAddr(t)
	a := testnode.Start(t, "a", 16<<20, withHTTP(aHTTP))
	b := testnode.Start(t, "b", 16<<20, withHTTP(bHTTP))
	ctx := context.Background()
	id, missing := store.ObjectID{7}, store.ObjectID{8}
	if err := testutil.StoreClient(t, b.Socket).PutID(ctx, id, testutil.Pattern(3<<20, 7), []byte("m")); err != nil {
		t.Fatal(err)
	}
	c, err := stream.Connect(ctx, a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Sync(ctx, []stream.PeerRequest{{Kind: stream.Copy, From: b.Addr, Objects: []stream.ObjectID{id, missing}}}); err == nil {
		t.Fatal("a SYNC of a missing object succeeded")
	}
	snap := transfers(t, aHTTP)
	if len(snap.Recent) != 1 || len(snap.Active) != 0 {
		t.Fatalf("a's transfers: %+v", snap)
	}
	r := snap.Recent[0]
	if r.Kind != "sync COPY" || r.Peer != b.Addr || r.Objects != 2 || r.Failed != 1 || r.Bytes != 3<<20+1 || r.Total != 3<<20+1 || len(r.Outcomes) != 2 {
		t.Errorf("a's SYNC: %+v", r)
	}
	for _, o := range r.Outcomes {
		if (o.ID == id.String()) != o.OK {
			t.Errorf("outcome %+v", o)
		}
	}
	if len(snap.Errors) != 1 || !strings.Contains(snap.Errors[0].Where, "sync COPY") {
		t.Errorf("a's errors: %+v", snap.Errors)
	}
	// b served it: a send, done once the receiver acknowledged.
	deadline := time.Now().Add(10 * time.Second)
	for snap = transfers(t, bHTTP); len(snap.Recent) == 0 && time.Now().Before(deadline); snap = transfers(t, bHTTP) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(snap.Recent) != 1 || snap.Recent[0].Kind != "send COPY" || snap.Recent[0].Bytes != 3<<20+1 || snap.Recent[0].Done != 2 {
		t.Errorf("b's transfers: %+v", snap)
	}

	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/api/locate?id=zz", 400, "40 hex digits"},
		{"/api/locate?id=" + id.String(), 409, "not in a cluster"},
		{"/", 200, "dash.js"},
		{"/dash.css", 200, "--ok"},
		{"/nonexistent", 404, ""},
	} {
		code, body, err := httpGet(nil, "http://"+aHTTP+tc.path)
		if err != nil || code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s: %d %.100q %v; want %d %q", tc.path, code, body, err, tc.code, tc.body)
		}
	}
	resp, err := http.Post("http://"+aHTTP+"/api/state", "application/json", nil)
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/state: %v %v", resp, err)
	}
	if err == nil {
		resp.Body.Close()
	}
}

// In CA mode the HTTP endpoint is HTTPS with the node's certificate: a
// certificate of the CA with the read role reads the dashboard and the
// metrics, one without a certificate only the probes, one of another CA
// or without a role nothing.
func TestDashboardCAMode(t *testing.T) {
	p, other := newPKI(t, "site-ca"), newPKI(t, "other-ca")
	httpAddr := testutil.FreeAddr(t)
	testnode.Start(t, "a", 16<<20, func(c *streamserver.Config) {
		c.TLS, c.TLSDefaultRole, c.MetricsAddr = p.issue(t, "a", trust.RoleWrite), trust.RoleNone, httpAddr
	})
	base := "https://" + httpAddr
	tlsOf := func(f trust.CAFiles) *tls.Config {
		cfg, err := stream.Credentials{TLSCert: f.Cert, TLSKey: f.Key, TLSCA: f.CA}.TLSConfig()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	reader := tlsOf(p.issue(t, "reader", trust.RoleRead))
	for _, path := range []string{"/api/state", "/metrics", "/"} {
		if code, body, err := httpGet(reader, base+path); err != nil || code != 200 {
			t.Errorf("reader GET %s: %d %.100q %v", path, code, body, err)
		}
	}
	anon := &tls.Config{InsecureSkipVerify: true}
	if code, _, err := httpGet(anon, base+"/readyz"); err != nil || code != 200 {
		t.Errorf("/readyz without a certificate: %d %v", code, err)
	}
	if code, body, err := httpGet(anon, base+"/api/state"); err != nil || code != 403 || !strings.Contains(body, "no client certificate") {
		t.Errorf("/api/state without a certificate: %d %q %v", code, body, err)
	}
	for name, cfg := range map[string]*tls.Config{
		"another CA's":    tlsOf(other.issue(t, "intruder", trust.RoleAdmin)),
		"a role-less one": tlsOf(p.issue(t, "nobody", trust.RoleNone)),
	} {
		if code, body, err := httpGet(cfg, base+"/api/state"); err == nil && code == 200 {
			t.Errorf("%s certificate read the dashboard: %.100q", name, body)
		}
	}
}

// The dashboard is our own files only: none of them loads anything from
// elsewhere (no CDN, no absolute URL), and every page is served with a
// policy that lets the browser run nothing but them.
func TestDashboardIsSelfContained(t *testing.T) {
	files, err := os.ReadDir("dashboard")
	if err != nil {
		t.Fatal(err)
	}
	absolute := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|<iframe|\beval\(`)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("dashboard", f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		// The SVG namespace is a name, not a place anything is loaded from.
		b = bytes.ReplaceAll(b, []byte(`"http://www.w3.org/2000/svg"`), nil)
		if m := absolute.Find(b); m != nil {
			t.Errorf("dashboard/%s refers to something outside the binary: %q", f.Name(), m)
		}
	}
	httpAddr := testutil.FreeAddr(t)
	testnode.Start(t, "a", 1<<20, func(c *streamserver.Config) { c.MetricsAddr = httpAddr })
	for _, name := range []string{"", "dash.js", "dash.css"} {
		r, err := http.Get("http://" + httpAddr + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if csp := r.Header.Get("Content-Security-Policy"); r.StatusCode != 200 || !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET /%s: %d, Content-Security-Policy %q", name, r.StatusCode, csp)
		}
	}
}
