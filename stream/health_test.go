package stream_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/cluster/clustertest"
	"github.com/plasmastream/plasmastream/internal/testutil"
)

// probe GETs path on the server's HTTP address.
func probe(t *testing.T, port int, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitProbe waits until path answers code with a body containing want.
func waitProbe(t *testing.T, port int, path string, code int, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, body := probe(t, port, path)
		if got == code && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d %q, want %d with %q", path, got, body, code, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// /healthz says the process is alive; /readyz says whether it can work:
// store connected and cluster directory reachable, with the reason when
// not.
func TestHealthAndReadiness(t *testing.T) {
	etcd := clustertest.StartExternal(t, 1)
	port := testutil.FreePort(t, "127.0.0.1")
	sock, storeCmd := testutil.StartStoreProcess(t, "16MiB")
	testutil.StartStreamServer(t, "a", sock, "127.0.0.1", "--http-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--etcd", strings.Join(etcd.Endpoints(), ","), "--lease-ttl", "2s", "--etcd-timeout", "1s")
	waitProbe(t, port, "/readyz", 200, "store: ok\ncluster: ok")
	waitProbe(t, port, "/healthz", 200, "ok: a")
	// The same address serves the metrics and the dashboard.
	waitProbe(t, port, "/metrics", 200, "plasma_stream_store_up 1")
	waitProbe(t, port, "/", 200, "dash.js")

	etcd.Kill(0)
	waitProbe(t, port, "/readyz", 503, "cluster: failed")
	waitProbe(t, port, "/healthz", 200, "ok: a")

	killStore(t, storeCmd, sock)
	waitProbe(t, port, "/readyz", 503, "store: failed: store at "+sock+" unreachable")
	waitProbe(t, port, "/healthz", 200, "ok: a")
}
