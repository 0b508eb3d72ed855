// Package trust holds node identities and the trust file: who a node is
// and whom it accepts.
//
// The model:
//
//   - A node's (or a client's) identity is an Ed25519 key pair. The private
//     key lives in a key file: the 32-byte seed as 64 hex digits and a
//     newline, mode 0600 (LoadKey refuses a file others can read). A key
//     file is written atomically and never replaces another key unless
//     forced, so a crash or a typo cannot leave a node without its key.
//   - Peers are known by public key only, no CA: a trust file lists the
//     keys a node accepts, each with a name (for logs and errors) and a
//     role, read ⊂ write ⊂ admin. The Store holds the current Set behind
//     an atomic pointer; Reload swaps in a new one, or keeps the old one
//     and says why when the file is wrong.
//   - For TLS, an identity becomes a self-signed X.509 certificate carrying
//     its Ed25519 key (Identity.Certificate). The certificate is only a
//     carrier: a peer is authenticated because the TLS 1.3 handshake proves
//     it holds the private key of the certificate's public key, and
//     authorised because that key is in the trust file (VerifyPinned).
//     Names, dates and issuers in certificates are not trusted or checked.
//
// What this package does not do yet: servers do not run TLS and requests
// are not checked against roles (docs/trust.md says what is planned).
// Nothing here ever formats a private key: Identity prints as its public
// key, and errors about key files never echo their content.
package trust
