package trust

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"time"
)

// Certificate returns a self-signed X.509 certificate for the identity's
// Ed25519 key, with the key, for a tls.Config. Peers pin the key, not the
// certificate: a new one may be made at every start. Its validity spans
// decades because no one checks it (see VerifyPinned).
func (id Identity) Certificate() (tls.Certificate, error) {
	if id.priv == nil {
		return tls.Certificate{}, errors.New("certificate: no identity")
	}
	serial, err := newSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "plasma " + id.Public().String()},
		NotBefore:             now.Add(-24 * time.Hour), // tolerate skewed clocks
		NotAfter:              now.AddDate(50, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	pub := id.priv.Public()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, id.priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id.priv, Leaf: leaf}, nil
}

// PeerKey returns the Ed25519 public key a certificate carries, or an
// error if it carries another kind of key.
func PeerKey(cert *x509.Certificate) (PublicKey, error) {
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("peer certificate carries a %s key, not an Ed25519 node key", cert.PublicKeyAlgorithm)
	}
	return PublicKey(pub), nil
}

// ErrUnknownKey is returned (wrapped) by a VerifyPinned function for a peer
// whose key is not trusted.
var ErrUnknownKey = errors.New("key is not in the trust file")

// VerifyPinned returns a tls.Config.VerifyPeerCertificate function that
// accepts a peer presenting exactly one self-signed certificate whose
// Ed25519 key keys knows (typically Store.Lookup, so a reload applies to
// the next handshake). Set InsecureSkipVerify (client side) or
// RequireAnyClientCert (server side) so this is the only check, and
// disable session resumption, for which VerifyPeerCertificate is not
// called: TLSConfig does both.
//
// Possession of the key is proved by the TLS 1.3 handshake itself (the
// peer signs the transcript with it); the self-signature check only keeps
// out certificates no plasma node made.
func VerifyPinned(keys func(PublicKey) (Entry, bool)) func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	return func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
		if len(rawCerts) != 1 {
			return fmt.Errorf("peer presented %d certificates, want exactly one (its node key)", len(rawCerts))
		}
		cert, err := x509.ParseCertificate(rawCerts[0])
		if err != nil {
			return fmt.Errorf("peer certificate: %w", err)
		}
		key, err := PeerKey(cert)
		if err != nil {
			return err
		}
		if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
			return fmt.Errorf("peer certificate for key %s is not signed by that key: %w", key, err)
		}
		if _, ok := keys(key); !ok {
			return fmt.Errorf("peer key %s: %w", key, ErrUnknownKey)
		}
		return nil
	}
}

// TLSConfig returns a TLS 1.3 configuration for either end of a
// connection between nodes: it presents id's certificate and accepts only
// peers whose key keys knows. As a server it requires a client
// certificate; as a client it skips the CA check, which VerifyPinned
// replaces. The caller sets ServerName or NextProtos if it needs them.
func TLSConfig(id Identity, keys func(PublicKey) (Entry, bool)) (*tls.Config, error) {
	cert, err := id.Certificate()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:            tls.VersionTLS13,
		Certificates:          []tls.Certificate{cert},
		ClientAuth:            tls.RequireAnyClientCert,
		InsecureSkipVerify:    true, // the pinned key is checked instead
		VerifyPeerCertificate: VerifyPinned(keys),
		// A resumed session skips VerifyPeerCertificate: a key removed
		// from the trust file could come back through a ticket.
		SessionTicketsDisabled: true,
	}, nil
}

// ConnKey returns the verified peer key of a completed handshake.
func ConnKey(cs tls.ConnectionState) (PublicKey, error) {
	if !cs.HandshakeComplete || len(cs.PeerCertificates) == 0 {
		return PublicKey{}, errors.New("peer presented no certificate")
	}
	return PeerKey(cs.PeerCertificates[0])
}
