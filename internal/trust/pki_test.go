package trust

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCAIssuesCertificatesThatVerify(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := NewCA("test ca")
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteCA(dir, ca, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteCA(dir, ca, false); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second WriteCA without force: %v, want ErrKeyExists", err)
	}
	for name, want := range map[string]os.FileMode{CAFile: 0o644, CAKeyFile: 0o600} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != want {
			t.Fatalf("%s: %v mode %v, want %v", name, err, st.Mode().Perm(), want)
		}
	}
	loaded, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := loaded.Issue(IssueOptions{Name: "node-a", Hosts: []string{"10.0.0.1", "a.example"}, Role: RoleWrite})
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "a.crt"), filepath.Join(dir, "a.key")
	if err := WritePair(certPath, keyPath, certPEM, keyPEM, false); err != nil {
		t.Fatal(err)
	}
	pair, err := LoadPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := LoadPool(filepath.Join(dir, CAFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "a.example", KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("verify for %v: %v", usage, err)
		}
	}
	if got := CertRole(pair.Leaf); got != RoleWrite {
		t.Fatalf("CertRole = %v, want write", got)
	}
	if pair.Leaf.Subject.CommonName != "node-a" || len(pair.Leaf.IPAddresses) != 1 {
		t.Fatalf("subject %v, IPs %v", pair.Leaf.Subject, pair.Leaf.IPAddresses)
	}
	// Another CA's certificate does not verify.
	other, _ := NewCA("other")
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: other.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
		t.Fatal("a certificate verified against another CA")
	}
	// A key file others may read is refused, without its content in the error.
	os.Chmod(keyPath, 0o644)
	if _, err := LoadPair(certPath, keyPath); err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), "PRIVATE") {
		t.Fatalf("LoadPair of a 0644 key: %v", err)
	}
	if _, err := LoadCA(t.TempDir()); err == nil {
		t.Fatal("LoadCA of an empty directory succeeded")
	}
}

func TestCertRoleNeedsThePrefix(t *testing.T) {
	ca, _ := NewCA("ca")
	for role, want := range map[Role]Role{RoleNone: RoleNone, RoleRead: RoleRead, RoleAdmin: RoleAdmin} {
		c, k, err := ca.Issue(IssueOptions{Name: "x", Role: role})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		WritePair(filepath.Join(dir, "c"), filepath.Join(dir, "k"), c, k, false)
		pair, err := LoadPair(filepath.Join(dir, "c"), filepath.Join(dir, "k"))
		if err != nil {
			t.Fatal(err)
		}
		if got := CertRole(pair.Leaf); got != want {
			t.Fatalf("role %v: CertRole = %v", role, got)
		}
	}
	// An OU "admin" without the prefix grants nothing.
	cert := &x509.Certificate{}
	cert.Subject.OrganizationalUnit = []string{"admin", "plasma:bogus"}
	if got := CertRole(cert); got != RoleNone {
		t.Fatalf("CertRole(OU=admin) = %v, want none", got)
	}
	if _, _, err := ca.Issue(IssueOptions{Name: "bad name"}); err == nil {
		t.Fatal("Issue accepted a name with a space")
	}
}
