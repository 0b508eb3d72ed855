package stream

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/plasmastream/plasmastream/internal/trust"
)

// Identity is a node or client key pair (an Ed25519 key, as written by
// plasma keygen); PublicKey is its public half, 64 hex digits in text.
type (
	Identity  = trust.Identity
	PublicKey = trust.PublicKey
)

// LoadKey reads a private key file written by plasma keygen (mode 0600).
func LoadKey(path string) (Identity, error) { return trust.LoadKey(path) }

// ParsePublicKey reads a public key of 64 hex digits.
func ParsePublicKey(s string) (PublicKey, error) { return trust.ParsePublicKey(s) }

// WithKey connects with mutual TLS 1.3, presenting id: a server started
// with --trusted-keys serves only the keys its trust file holds, each
// with its role. The server's own key must be pinned too, with
// WithServerKey or WithTrustedKeys.
func WithKey(id Identity) Option { return func(o *options) { o.key = &id } }

// WithServerKey pins the server's public key: a server (or anything in
// between) proving another key is refused at the handshake.
func WithServerKey(pub PublicKey) Option {
	return WithTrustedKeys(func(k PublicKey) bool { return k == pub })
}

// WithTrustedKeys accepts any server whose public key trusted accepts.
func WithTrustedKeys(trusted func(PublicKey) bool) Option {
	return func(o *options) { o.trusted = trusted }
}

// WithTLSFiles connects with mutual TLS 1.3 in CA mode, to a server
// started with --tls-cert/--tls-key/--tls-ca: this client presents the
// certificate in certFile (PEM, its key in keyFile, mode 0600), which the
// server maps to a name (its CommonName) and a role, and accepts a server
// whose certificate chains to a CA in caFile. Host names are not checked:
// the CA's signature says who answers (docs/trust.md).
func WithTLSFiles(certFile, keyFile, caFile string) Option {
	return func(o *options) { o.caFiles = &trust.CAFiles{Cert: certFile, Key: keyFile, CA: caFile} }
}

// apply runs the options and makes the TLS configuration they ask for.
func (o *options) apply(opts []Option) error {
	for _, f := range opts {
		f(o)
	}
	switch {
	case o.caFiles != nil && (o.key != nil || o.trusted != nil):
		return errors.New("stream: WithTLSFiles (CA mode) and WithKey/WithServerKey (pinned keys) exclude each other: a server runs one or the other")
	case o.caFiles != nil:
		ct, err := trust.LoadCATLS(*o.caFiles, trust.RoleNone)
		if err != nil {
			return err
		}
		o.tls = ct.Config()
		return nil
	case o.key == nil && o.trusted == nil:
		return nil
	case o.key == nil:
		return errors.New("stream: a pinned server key (WithServerKey, WithTrustedKeys) needs a key of this client too (WithKey): the server verifies both ends")
	case o.trusted == nil:
		return errors.New("stream: WithKey needs the server's key pinned too (WithServerKey or WithTrustedKeys)")
	}
	cfg, err := trust.TLSConfig(*o.key, func(k PublicKey) (trust.Entry, bool) {
		return trust.Entry{Key: k, Name: "server", Role: trust.RoleAdmin}, o.trusted(k)
	})
	if err != nil {
		return err
	}
	o.tls = cfg
	return nil
}

// Credentials are the command-line tools' credential flags: --key FILE
// and --server-key HEX (pinned keys, both or neither), or --tls-cert,
// --tls-key and --tls-ca (CA mode, all three); not both kinds.
type Credentials struct {
	Key, ServerKey         string
	TLSCert, TLSKey, TLSCA string
}

// Options are the Connect options the credentials ask for (none: plain
// TCP).
func (c Credentials) Options() ([]Option, error) {
	files := trust.CAFiles{Cert: c.TLSCert, Key: c.TLSKey, CA: c.TLSCA}
	if !files.Given() {
		return KeyFileOptions(c.Key, c.ServerKey)
	}
	if c.Key != "" || c.ServerKey != "" {
		return nil, errors.New("--tls-cert/--tls-key/--tls-ca (CA mode) and --key/--server-key (pinned keys) exclude each other: use the kind the server runs")
	}
	if err := files.Check(); err != nil {
		return nil, err
	}
	return []Option{WithTLSFiles(files.Cert, files.Key, files.CA)}, nil
}

// KeyFileOptions are the options of the command-line tools' --key FILE
// and --server-key HEX: both or neither (none: plain TCP).
func KeyFileOptions(keyFile, serverKey string) ([]Option, error) {
	switch {
	case keyFile == "" && serverKey == "":
		return nil, nil
	case keyFile == "" || serverKey == "":
		return nil, errors.New("--key and --server-key go together: the server checks this client's key, and this client the server's (plasma key show prints a node's public key)")
	}
	id, err := LoadKey(keyFile)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublicKey(serverKey)
	if err != nil {
		return nil, fmt.Errorf("--server-key: %w", err)
	}
	return []Option{WithKey(id), WithServerKey(pub)}, nil
}

// TLSConfig is the client TLS configuration the credentials ask for (nil:
// none), for the HTTPS endpoint of a stream server with keys (plasma
// dashboard): the same trust as its stream port.
func (c Credentials) TLSConfig() (*tls.Config, error) {
	opts, err := c.Options()
	if err != nil {
		return nil, err
	}
	var o options
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	return o.tls, nil
}
