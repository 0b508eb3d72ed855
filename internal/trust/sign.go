package trust

import "crypto/ed25519"

// Signed messages (the NATS bridge's announcements): an identity signs
// bytes with its private key; anyone holding the public key checks them.
// What is signed, and that it cannot be replayed where it would mean
// something else, is the caller's to make sure (a domain prefix).

// SignatureSize is the length of a signature.
const SignatureSize = ed25519.SignatureSize

// Sign signs msg with the identity's private key.
func (id Identity) Sign(msg []byte) []byte { return ed25519.Sign(id.priv, msg) }

// Verify reports whether sig is k's signature of msg.
func (k PublicKey) Verify(msg, sig []byte) bool {
	return len(sig) == SignatureSize && ed25519.Verify(ed25519.PublicKey(k[:]), msg, sig)
}
