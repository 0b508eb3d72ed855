package trust

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A small certificate authority, for operators without a PKI of their own:
// `plasma ca init` and `plasma ca issue` make the CA and the certificates
// that secure etcd (--etcd-cert/--etcd-key/--etcd-ca) and the stream
// server's CA mode (--tls-cert/--tls-key/--tls-ca). Keys are ECDSA P-256,
// which every TLS stack (etcd's gRPC, Python's ssl, NATS) accepts.

// RoleUnitPrefix marks the certificate subject's organizational unit that
// carries a plasma role in CA mode: OU=plasma:write. The prefix keeps an
// OU an existing PKI uses for something else ("admin") from granting a
// role.
const RoleUnitPrefix = "plasma:"

// CA is a certificate authority: its certificate and signing key.
type CA struct {
	Cert *x509.Certificate
	key  crypto.Signer
}

// CAFile and CAKeyFile are the names of a CA's files in its directory.
const (
	CAFile    = "ca.crt"
	CAKeyFile = "ca.key"
)

// NewCA makes a self-signed CA certificate named name, valid for ten years.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"plasma"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	return &CA{Cert: cert, key: key}, nil
}

// CertPEM is the CA certificate in PEM, the content of --etcd-ca and
// --tls-ca files.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Pool is a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// IssueOptions describe a certificate to issue.
type IssueOptions struct {
	Name string // the subject's common name: the peer's name in logs and errors
	// Hosts are the DNS names and IP addresses the holder serves on, as
	// subject alternative names; empty means localhost and 127.0.0.1,
	// enough for one machine.
	Hosts []string
	Role  Role          // RoleNone: no role unit (etcd certificates need none)
	Valid time.Duration // default one year
}

// Issue makes a certificate signed by ca, usable by both ends of a
// connection (server and client authentication), and its new private key,
// both in PEM.
func (ca *CA) Issue(o IssueOptions) (certPEM, keyPEM []byte, err error) {
	if o.Name == "" {
		return nil, nil, errors.New("issue certificate: a name is required")
	}
	if !ValidName(o.Name) {
		return nil, nil, fmt.Errorf("issue certificate: name %q: use letters, digits and . _ - @ : / + = only", clip(o.Name))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	valid := o.Valid
	if valid <= 0 {
		valid = 365 * 24 * time.Hour
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: o.Name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(valid),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if o.Role != RoleNone {
		tmpl.Subject.OrganizationalUnit = []string{RoleUnitPrefix + o.Role.String()}
	}
	hosts := o.Hosts
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1"}
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate %s: %w", o.Name, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate %s: %w", o.Name, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// CertRole returns the role a CA-issued certificate carries in an
// organizational unit "plasma:<role>" (the highest, if several), or
// RoleNone.
func CertRole(cert *x509.Certificate) Role {
	best := RoleNone
	for _, ou := range cert.Subject.OrganizationalUnit {
		if r, ok := strings.CutPrefix(ou, RoleUnitPrefix); ok {
			if role, err := ParseRole(r); err == nil && role > best {
				best = role
			}
		}
	}
	return best
}

// WriteCA writes the CA's certificate (CAFile, mode 0644) and key
// (CAKeyFile, mode 0600) into dir, which it creates (0700) if missing.
// Existing files are replaced only with force.
func WriteCA(dir string, ca *CA, force bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write ca: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return fmt.Errorf("write ca: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	defer clear(keyPEM)
	return WritePair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile), ca.CertPEM(), keyPEM, force)
}

// WritePair writes a certificate (mode 0644) and its private key (mode
// 0600), each atomically; the key first, so a certificate never appears
// without its key. Existing files are replaced only with force.
func WritePair(certPath, keyPath string, certPEM, keyPEM []byte, force bool) error {
	if !force {
		for _, p := range []string{certPath, keyPath} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s: %w (use --force to replace it)", p, ErrKeyExists)
			}
		}
	}
	if err := writeFileAtomic(keyPath, keyPEM, force); err != nil {
		return fmt.Errorf("write %s: %w", keyPath, err)
	}
	if err := writeFileAtomic(certPath, certPEM, force); err != nil {
		return fmt.Errorf("write %s: %w", certPath, err)
	}
	if err := os.Chmod(certPath, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", certPath, err)
	}
	return nil
}

// LoadCA reads a CA written by WriteCA from dir.
func LoadCA(dir string) (*CA, error) {
	pair, err := LoadPair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	if !pair.Leaf.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", filepath.Join(dir, CAFile))
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: the key cannot sign", filepath.Join(dir, CAKeyFile))
	}
	return &CA{Cert: pair.Leaf, key: signer}, nil
}

// LoadPair reads a certificate and its private key (PEM). Like LoadKey it
// refuses a key file that group or others may read, and its errors never
// quote the key.
func LoadPair(certPath, keyPath string) (tls.Certificate, error) {
	st, err := os.Stat(keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("private key: %w", err)
	}
	if err := checkPrivateMode(keyPath, st); err != nil {
		return tls.Certificate{}, err
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		// tls's errors describe the PEM blocks, never their bytes.
		return tls.Certificate{}, fmt.Errorf("certificate %s with key %s: %w", certPath, keyPath, err)
	}
	return pair, nil
}

// LoadPool reads a PEM file of CA certificates.
func LoadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca file: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("ca file %s holds no PEM certificate", path)
	}
	return p, nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return s, nil
}

// ClientConfig reads a certificate, its private key and a CA file (PEM)
// into the TLS configuration of a client that presents the certificate
// and accepts only a server whose certificate the CA issued for the host
// it dials (etcd's --cert, --key and --cacert).
func ClientConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("TLS needs a certificate, its private key and a CA file, all three")
	}
	pair, err := LoadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	pool, err := LoadPool(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}, RootCAs: pool}, nil
}
