package trust

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeIssued writes a certificate of ca for name with role into dir.
func writeIssued(t *testing.T, dir string, ca *CA, name string, role Role) CAFiles {
	t.Helper()
	cert, key, err := ca.Issue(IssueOptions{Name: name, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	f := CAFiles{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: filepath.Join(dir, "ca.crt")}
	if err := WritePair(f.Cert, f.Key, cert, key, true); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.CA, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// Verify accepts a chain of its CA with the usage and a role (or the
// default role), and nothing else; Reload keeps the CA in use when a file
// fails.
func TestCATLSVerifyAndReload(t *testing.T) {
	dir := t.TempDir()
	ca, _ := NewCA("site")
	other, _ := NewCA("other")
	f := writeIssued(t, dir, ca, "node", RoleWrite)
	ct, err := LoadCATLS(f, RoleNone)
	if err != nil {
		t.Fatal(err)
	}
	chain := func(c *CA, name string, role Role) []*x509.Certificate {
		certPEM, _, err := c.Issue(IssueOptions{Name: name, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(certPEM)
		if b == nil {
			t.Fatal("issued certificate is not PEM")
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return []*x509.Certificate{cert}
	}
	if p, err := ct.Verify(chain(ca, "alice", RoleAdmin), x509.ExtKeyUsageClientAuth); err != nil || p.Name != "alice" || p.Role != RoleAdmin {
		t.Fatalf("a certificate of the CA: %+v, %v", p, err)
	}
	if _, err := ct.Verify(chain(other, "mallory", RoleAdmin), x509.ExtKeyUsageClientAuth); err == nil {
		t.Fatal("a certificate of another CA verified")
	}
	if _, err := ct.Verify(chain(ca, "norole", RoleNone), x509.ExtKeyUsageClientAuth); err == nil || !strings.Contains(err.Error(), "no plasma role") {
		t.Fatalf("a certificate without a role: %v", err)
	}
	if _, err := ct.Verify(nil, x509.ExtKeyUsageClientAuth); err == nil {
		t.Fatal("no certificate verified")
	}

	os.Chmod(f.Key, 0o644)
	if err := ct.Reload(); err == nil || !strings.Contains(err.Error(), "still using") || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("reload with a key others may read: %v", err)
	}
	if _, err := ct.Verify(chain(ca, "alice", RoleRead), x509.ExtKeyUsageClientAuth); err != nil {
		t.Fatalf("after a failed reload the old CA is gone: %v", err)
	}
	writeIssued(t, dir, other, "node", RoleWrite) // rotate to the other CA
	if err := ct.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.Verify(chain(ca, "alice", RoleRead), x509.ExtKeyUsageClientAuth); err == nil {
		t.Fatal("after rotation the old CA's certificate still verifies")
	}
}

func TestRoleFlagAndCAFilesCheck(t *testing.T) {
	var r Role
	for s, want := range map[string]Role{"none": RoleNone, "read": RoleRead, "admin": RoleAdmin} {
		if err := r.Set(s); err != nil || r != want {
			t.Errorf("Set(%q) = %v, %v", s, r, err)
		}
	}
	if err := r.Set("owner"); err == nil {
		t.Error("Set(owner) succeeded")
	}
	if err := (CAFiles{Cert: "c"}).Check(); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Errorf("one file of three: %v", err)
	}
	if err := (CAFiles{}).Check(); err != nil {
		t.Errorf("none: %v", err)
	}
}
