package stream_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/stream"
)

// A node with keys serves its HTTP endpoint over HTTPS with the trust of
// its stream port: /healthz and /readyz to anyone (probes), /metrics and
// the dashboard only to a client certificate of a trusted key with the
// read role; plasma dashboard lends the user's key to a local browser.
func TestDashboardRequiresTrust(t *testing.T) {
	dir := testutil.ShortDir(t)
	ids := map[string]trust.Identity{}
	files := map[string]string{}
	for _, name := range []string{"node", "reader", "stranger"} {
		id, err := trust.Generate()
		if err != nil {
			t.Fatal(err)
		}
		ids[name], files[name] = id, filepath.Join(dir, name+".key")
		if err := trust.WriteKey(files[name], id, false); err != nil {
			t.Fatal(err)
		}
	}
	trusted := filepath.Join(dir, "trusted")
	if err := os.WriteFile(trusted, []byte(fmt.Sprintf("%s reader read\n", ids["reader"].Public())), 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr := testutil.FreeAddr(t)
	node := testutil.StartNode(t, "n", "16MiB", "-k", files["node"], "--trusted-keys", trusted, "--http-addr", httpAddr, "--log-level", "debug")
	testutil.WaitTCP(t, httpAddr)

	get := func(cfg *tls.Config, url string) (int, string, error) {
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
	base := "https://" + httpAddr
	anon := &tls.Config{InsecureSkipVerify: true} // a browser or curl -k: no client certificate
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/healthz", 200, "ok: n"},
		{"/readyz", 200, "store: ok"},
		{"/metrics", 403, "plasma dashboard"},
		{"/api/state", 403, "requires a trusted client certificate"},
		{"/", 403, "forbidden"},
	} {
		code, body, err := get(anon, base+tc.path)
		if err != nil || code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s without a client certificate: %d %q %v; want %d and %q", tc.path, code, body, err, tc.code, tc.body)
		}
	}
	if code, _, err := get(nil, "http://"+httpAddr+"/api/state"); err == nil && code == 200 {
		t.Error("plain HTTP served the dashboard of a node with keys")
	}
	strangerTLS, err := trust.TLSConfig(ids["stranger"], func(k trust.PublicKey) (trust.Entry, bool) { return trust.Entry{Key: k}, true })
	if err != nil {
		t.Fatal(err)
	}
	if code, body, err := get(strangerTLS, base+"/api/state"); err == nil {
		t.Errorf("an untrusted key was served: %d %q", code, body)
	}
	readerTLS, err := stream.Credentials{Key: files["reader"], ServerKey: ids["node"].Public().String()}.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	if code, body, err := get(readerTLS, base+"/api/state"); err != nil || code != 200 || !strings.Contains(body, `"name":"n"`) {
		t.Errorf("the reader's key: %d %q %v; want the state", code, body, err)
	}
	// No private key reaches /metrics, the dashboard's state, the log or
	// the command line (ps): keys come from files, never flag values.
	_, metrics, err := get(readerTLS, base+"/metrics")
	if err != nil || !strings.Contains(metrics, "plasma_") {
		t.Fatalf("/metrics with the reader's key: %v %.200q", err, metrics)
	}
	_, state, _ := get(readerTLS, base+"/api/state")
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", node.Stream.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for name, file := range files {
		seed, _ := os.ReadFile(file)
		secret := strings.TrimSpace(string(seed))
		for where, text := range map[string]string{"/metrics": metrics, "/api/state": state, "the log": node.Log.String(), "the command line": string(cmdline)} {
			if len(secret) != 64 || strings.Contains(text, secret) || strings.Contains(text, secret[:32]) {
				t.Errorf("%s holds the private key of %s", where, name)
			}
		}
	}
	// A node with another key is refused by the reader's pinned server key.
	wrong, _ := stream.Credentials{Key: files["reader"], ServerKey: ids["stranger"].Public().String()}.TLSConfig()
	if _, _, err := get(wrong, base+"/api/state"); err == nil {
		t.Error("the dashboard client accepted a server whose key is not the pinned one")
	}

	// plasma dashboard: the dashboard on loopback, with the reader's key.
	local := testutil.FreeAddr(t)
	testutil.StartProcess(t, "plasma", "dashboard", "--node", httpAddr, "--listen", local, "--key", files["reader"], "--server-key", ids["node"].Public().String())
	testutil.WaitTCP(t, local)
	for path, want := range map[string]string{"/api/state": `"name":"n"`, "/": "dash.js", "/dash.js": "api/state"} {
		if code, body, err := get(nil, "http://"+local+path); err != nil || code != 200 || !strings.Contains(body, want) {
			t.Errorf("plasma dashboard GET %s: %d %.200q %v; want %q", path, code, body, err, want)
		}
	}
	r, err := http.Post("http://"+local+"/api/state", "text/plain", nil)
	if err != nil || r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("plasma dashboard POST: %v %v; want 405", r, err)
	}
	if err == nil {
		r.Body.Close()
	}
	out, err := testutil.RunBinary(t, "plasma", "dashboard", "--node", httpAddr, "--listen", "0.0.0.0:0", "--key", files["reader"], "--server-key", ids["node"].Public().String())
	if err == nil || !strings.Contains(out, "loopback") {
		t.Errorf("plasma dashboard on 0.0.0.0: %v %q; want a refusal naming loopback", err, out)
	}
}
