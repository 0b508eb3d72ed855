package plasmacmd_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
)

// plasma ca init and ca issue write a CA and certificates (keys 0600,
// never replaced without --force), say how to use them, and a stream
// server in CA mode serves plasma-stream-cli with them.
func TestCAInitIssue(t *testing.T) {
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	out, errs, ok := keyCLI(t, dir, "ca", "init", caDir, "--name", "site-ca")
	if !ok || !strings.Contains(out, filepath.Join(caDir, "ca.crt")) || !strings.Contains(out, "plasma ca issue") {
		t.Fatalf("ca init: %q %q", out, errs)
	}
	caKey, _ := os.ReadFile(filepath.Join(caDir, "ca.key"))
	if _, errs, ok := keyCLI(t, dir, "ca", "init", caDir); ok || !strings.Contains(errs, "--force") {
		t.Fatalf("ca init over a CA: ok %v, %q", ok, errs)
	}
	if again, _ := os.ReadFile(filepath.Join(caDir, "ca.key")); !bytes.Equal(again, caKey) {
		t.Fatal("a refused ca init changed the CA key")
	}

	out, errs, ok = keyCLI(t, dir, "ca", "issue", caDir, "node-a", "--role", "write", "--host", "127.0.0.1,node-a.example")
	srvCert, srvKey := filepath.Join(caDir, "node-a.crt"), filepath.Join(caDir, "node-a.key")
	if !ok || !strings.Contains(out, "--tls-cert "+srvCert+" --tls-key "+srvKey) || !strings.Contains(out, "role write") {
		t.Fatalf("ca issue: %q %q", out, errs)
	}
	for file, mode := range map[string]os.FileMode{srvCert: 0o644, srvKey: 0o600, filepath.Join(caDir, "ca.key"): 0o600} {
		if st, err := os.Stat(file); err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v, mode %v; want %v", file, err, st.Mode(), mode)
		}
	}
	if key, _ := os.ReadFile(srvKey); strings.Contains(out+errs, strings.TrimSpace(string(key))) {
		t.Fatal("ca issue printed the private key")
	}
	if _, errs, ok := keyCLI(t, dir, "ca", "issue", caDir, "node-a"); ok || !strings.Contains(errs, "--force") {
		t.Fatalf("ca issue over a certificate: ok %v, %q", ok, errs)
	}
	if _, errs, ok := keyCLI(t, dir, "ca", "issue", caDir, "x", "--role", "owner"); ok || !strings.Contains(errs, "owner") {
		t.Fatalf("ca issue --role owner: ok %v, %q", ok, errs)
	}
	cli := filepath.Join(dir, "me")
	if out, errs, ok := keyCLI(t, dir, "ca", "issue", caDir, "me", "--role", "read", "-o", cli, "--valid", "24h"); !ok || !strings.Contains(out, cli+".crt") {
		t.Fatalf("ca issue -o: %q %q", out, errs)
	}

	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	port := testutil.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	testutil.StartProcess(t, "plasma-stream-server", "-s", sock, "-p", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--node-name", "node-a", "--tls-cert", srvCert, "--tls-key", srvKey, "--tls-ca", filepath.Join(caDir, "ca.crt"))
	ping := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(testutil.Binaries(t), "plasma-stream-cli"), append([]string{"-a", addr}, args...)...)
		cmd.Stdin = strings.NewReader("PING\n")
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	tlsArgs := []string{"--tls-cert", cli + ".crt", "--tls-key", cli + ".key", "--tls-ca", filepath.Join(caDir, "ca.crt")}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err := ping(tlsArgs...)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plasma-stream-cli with an issued certificate: %v\n%s", err, out)
		}
	}
	if out, err := ping(); err == nil {
		t.Fatalf("plasma-stream-cli without a certificate was served: %s", out)
	}
	if out, err := ping(append(tlsArgs, "--key", srvKey)...); err == nil || !strings.Contains(out, "exclude each other") {
		t.Fatalf("--tls-* with --key: %v %s", err, out)
	}
	if out, err := ping("--tls-cert", cli+".crt"); err == nil || !strings.Contains(out, "go together") {
		t.Fatalf("--tls-cert alone: %v %s", err, out)
	}
	// plasma talks to it too (the node is not clustered: the answer says so).
	_, errs, _ = keyCLI(t, dir, append([]string{"-a", addr, "nodes"}, tlsArgs...)...)
	if strings.Contains(errs, "TLS") || strings.Contains(errs, "certificate") {
		t.Fatalf("plasma nodes with an issued certificate: %s", errs)
	}
}
