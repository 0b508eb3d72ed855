package cliutil

import (
	"github.com/spf13/pflag"

	"github.com/plasmastream/plasmastream/stream"
)

// CredentialFlags defines the stream clients' credential flags (plasma,
// plasma-stream-cli): --key and --server-key for a server with pinned
// keys, --tls-cert, --tls-key and --tls-ca for one in CA mode. Keys come
// from files, never flag values, so they stay out of ps.
func CredentialFlags(f *pflag.FlagSet, c *stream.Credentials) {
	f.StringVar(&c.Key, "key", "", "connect with mutual TLS as the private key in FILE (plasma keygen); needs --server-key")
	f.StringVar(&c.ServerKey, "server-key", "", "the server's public key, 64 hex digits (plasma key show): a server proving another key is refused")
	f.StringVar(&c.TLSCert, "tls-cert", "", "CA mode: connect with mutual TLS presenting this certificate FILE (PEM, plasma ca issue); needs --tls-key and --tls-ca")
	f.StringVar(&c.TLSKey, "tls-key", "", "CA mode: the private key FILE of --tls-cert (PEM, mode 0600)")
	f.StringVar(&c.TLSCA, "tls-ca", "", "CA mode: the CA certificate FILE the server's certificate must chain to")
}
