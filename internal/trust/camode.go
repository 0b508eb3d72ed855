package trust

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
)

// CA mode (--tls-cert, --tls-key, --tls-ca): where an operator has a PKI,
// peers prove a certificate issued by its CA instead of a pinned key. A
// peer's identity is its certificate's CommonName and its role the
// certificate's "plasma:<role>" organizational unit (CertRole); host
// names are not checked, as pinned mode ignores them: a node is dialled at
// whatever address the directory or a SYNC names, and it is the CA's
// signature, not the address, that says who answers.

// CAFiles names the three files of CA mode.
type CAFiles struct {
	Cert, Key, CA string
}

// Given reports whether any of the three is set.
func (f CAFiles) Given() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Check says which of the three is missing, if some but not all are set.
func (f CAFiles) Check() error {
	if f.Given() && (f.Cert == "" || f.Key == "" || f.CA == "") {
		return errors.New("--tls-cert, --tls-key and --tls-ca go together: this end's certificate, its key, and the CA that peers' certificates must chain to")
	}
	return nil
}

// caMaterial is one load of the three files; never changed once made.
type caMaterial struct {
	pair tls.Certificate
	pool *x509.CertPool
}

// CATLS is the TLS of CA mode for both ends of connections. Its
// configuration reads the files' current content at every handshake, so
// Reload (SIGHUP: a rotated certificate or CA) applies to the next one.
type CATLS struct {
	files       CAFiles
	defaultRole Role
	cur         atomic.Pointer[caMaterial]
}

// LoadCATLS reads the three files. defaultRole is the role of a
// certificate without a plasma role unit (RoleNone: such a peer is
// refused); it matters on the serving end only.
func LoadCATLS(files CAFiles, defaultRole Role) (*CATLS, error) {
	if err := files.Check(); err != nil {
		return nil, err
	}
	c := &CATLS{files: files, defaultRole: defaultRole}
	m, err := loadMaterial(files)
	if err != nil {
		return nil, err
	}
	c.cur.Store(m)
	return c, nil
}

func loadMaterial(f CAFiles) (*caMaterial, error) {
	pair, err := LoadPair(f.Cert, f.Key)
	if err != nil {
		return nil, err
	}
	pool, err := LoadPool(f.CA)
	if err != nil {
		return nil, err
	}
	return &caMaterial{pair: pair, pool: pool}, nil
}

// Files are the files it was loaded from.
func (c *CATLS) Files() CAFiles { return c.files }

// Name is the CommonName of this end's certificate.
func (c *CATLS) Name() string { return c.cur.Load().pair.Leaf.Subject.CommonName }

// Reload reads the three files again; on error the configuration in use
// stays, and the error says so.
func (c *CATLS) Reload() error {
	m, err := loadMaterial(c.files)
	if err != nil {
		return fmt.Errorf("%w; still using the certificate and CA loaded before", err)
	}
	c.cur.Store(m)
	return nil
}

// Peer is a verified CA-mode peer.
type Peer struct {
	Name  string              // the certificate's CommonName
	Role  Role                // its role unit, or the default role
	Chain []*x509.Certificate // as presented: leaf first
}

// ErrNoRole is returned (wrapped) for a CA-issued certificate with no
// plasma role when the default role is none.
var ErrNoRole = errors.New("certificate has no plasma role")

// Verify checks a peer's chain against the current CA for usage and
// returns who it is. A serving end (usage ClientAuth) also needs a role.
func (c *CATLS) Verify(chain []*x509.Certificate, usage x509.ExtKeyUsage) (Peer, error) {
	if len(chain) == 0 {
		return Peer{}, errors.New("peer presented no certificate")
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: c.cur.Load().pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return Peer{}, fmt.Errorf("peer certificate %q: %w", clip(leaf.Subject.CommonName), err)
	}
	p := Peer{Name: leaf.Subject.CommonName, Role: CertRole(leaf), Chain: chain}
	if p.Role == RoleNone {
		p.Role = c.defaultRole
	}
	if usage == x509.ExtKeyUsageClientAuth && p.Role == RoleNone {
		return Peer{}, fmt.Errorf("peer certificate %q: %w (OU %sread, write or admin) and --tls-default-role is none", clip(p.Name), ErrNoRole, RoleUnitPrefix)
	}
	if !ValidName(p.Name) {
		// Names go into logs and errors sent to peers.
		return Peer{}, fmt.Errorf("peer certificate common name %q: use letters, digits and . _ - @ : / + = only", clip(p.Name))
	}
	return p, nil
}

// Config is the TLS 1.3 configuration of both ends. Dialling, it presents
// this end's certificate and accepts a server whose chain leads to the CA
// with server-auth usage; serving (GetConfigForClient), it requires a
// client certificate chaining to the CA with client-auth usage and a
// role. Session resumption is off, so every connection is checked against
// the CA in use.
func (c *CATLS) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &c.cur.Load().pair, nil
		},
		InsecureSkipVerify: true, // the chain is verified below, without a host name
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := c.Verify(cs.PeerCertificates, x509.ExtKeyUsageServerAuth)
			return err
		},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return c.serverConfig(), nil
		},
		SessionTicketsDisabled: true,
	}
}

func (c *CATLS) serverConfig() *tls.Config {
	m := c.cur.Load()
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.pair},
		ClientAuth:   tls.RequireAnyClientCert, // Verify checks the chain against m
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := c.Verify(cs.PeerCertificates, x509.ExtKeyUsageClientAuth)
			return err
		},
		SessionTicketsDisabled: true,
	}
}
