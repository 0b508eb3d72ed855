package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// node is an identity with the set of keys it trusts.
type node struct {
	id    Identity
	trust *Set
}

func newNode(t *testing.T) *node {
	t.Helper()
	id, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return &node{id: id, trust: mustSet(t)}
}

// mustSet is a trust set of the given nodes, named n0, n1, ...
func mustSet(t *testing.T, nodes ...*node) *Set {
	t.Helper()
	var b strings.Builder
	for i, n := range nodes {
		fmt.Fprintf(&b, "%s n%d write\n", n.id.Public(), i)
	}
	s, err := ParseFile(strings.NewReader(b.String()), "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (n *node) config(t *testing.T) *tls.Config {
	t.Helper()
	cfg, err := TLSConfig(n.id, n.trust.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// serve accepts one connection on a loopback listener, runs the TLS server
// handshake with cfg and, if it succeeds, writes the client's key. The
// handshake's error comes on the channel.
func serve(t *testing.T, cfg *tls.Config) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err != nil {
			done <- err
			return
		}
		k, err := ConnKey(tc.ConnectionState())
		if err == nil {
			_, err = fmt.Fprintf(tc, "%s\n", k)
		}
		done <- err
	}()
	return ln.Addr().String(), done
}

// dial connects with cfg and reads what the server says: the key it saw.
func dial(addr string, cfg *tls.Config) (string, PublicKey, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return "", PublicKey{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		return "", PublicKey{}, err
	}
	server, err := ConnKey(tc.ConnectionState())
	if err != nil {
		return "", server, err
	}
	// In TLS 1.3 the server checks the client's certificate after the
	// client's handshake is done: its refusal shows on the first read.
	b, err := io.ReadAll(tc)
	return string(b), server, err
}

func TestPinnedTLS(t *testing.T) {
	a, b := newNode(t), newNode(t)
	a.trust, b.trust = mustSet(t, b), mustSet(t, a)
	addr, done := serve(t, a.config(t))
	said, server, err := dial(addr, b.config(t))
	if err != nil {
		t.Fatalf("pinned handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
	if server != a.id.Public() || said != b.id.Public().String()+"\n" {
		t.Fatalf("client saw server key %s, server saw client key %q", server, said)
	}
}

func TestPinnedTLSRefusesUnknownClient(t *testing.T) {
	a, b := newNode(t), newNode(t)
	b.trust = mustSet(t, a) // b trusts a, a does not trust b
	addr, done := serve(t, a.config(t))
	said, _, err := dial(addr, b.config(t))
	if err == nil || said != "" {
		t.Fatalf("an unknown client read %q, err %v", said, err)
	}
	if err := <-done; !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), b.id.Public().String()) {
		t.Fatalf("server: %v, want ErrUnknownKey naming the client's key", err)
	}
}

func TestPinnedTLSRefusesUnknownServer(t *testing.T) {
	a, b := newNode(t), newNode(t)
	a.trust = mustSet(t, b) // a trusts b, b does not trust a
	addr, done := serve(t, a.config(t))
	if _, _, err := dial(addr, b.config(t)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("client: %v, want ErrUnknownKey", err)
	}
	if err := <-done; err == nil {
		t.Fatal("the server completed a handshake the client refused")
	}
}

func TestPinnedTLSRefusesClientWithoutCertificate(t *testing.T) {
	a := newNode(t)
	addr, done := serve(t, a.config(t))
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
	if said, _, err := dial(addr, cfg); err == nil || said != "" {
		t.Fatalf("a client without a certificate read %q, err %v", said, err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("server: %v", err)
	}
}

func TestPinnedTLSRefusesTLS12(t *testing.T) {
	a, b := newNode(t), newNode(t)
	a.trust, b.trust = mustSet(t, b), mustSet(t, a)
	addr, done := serve(t, a.config(t))
	cfg := b.config(t)
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if _, _, err := dial(addr, cfg); err == nil {
		t.Fatal("a TLS 1.2 client connected")
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("server: %v", err)
	}
}

// A man in the middle terminates the client's TLS with its own key and
// opens its own TLS to the server: both ends refuse it.
func TestPinnedTLSRefusesManInTheMiddle(t *testing.T) {
	a, b, m := newNode(t), newNode(t), newNode(t)
	a.trust, b.trust = mustSet(t, b), mustSet(t, a)
	addr, serverDone := serve(t, a.config(t))

	trustAll := func(PublicKey) (Entry, bool) { return Entry{}, true }
	mcfg, err := TLSConfig(m.id, trustAll)
	if err != nil {
		t.Fatal(err)
	}
	mitm, mitmDone := serve(t, mcfg)
	proxyLeg := make(chan error, 1)
	go func() {
		_, _, err := dial(addr, mcfg) // the proxy's own leg to the server
		proxyLeg <- err
	}()
	if _, _, err := dial(mitm, b.config(t)); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), m.id.Public().String()) {
		t.Fatalf("client facing the proxy: %v, want ErrUnknownKey naming the proxy's key", err)
	}
	<-mitmDone
	if err := <-proxyLeg; err == nil {
		t.Fatal("the server talked to the man in the middle")
	}
	if err := <-serverDone; !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("server facing the proxy: %v, want ErrUnknownKey", err)
	}
}

// A proxy replaying the server's certificate without its private key
// cannot sign the handshake.
func TestPinnedTLSRefusesStolenCertificate(t *testing.T) {
	a, b, m := newNode(t), newNode(t), newNode(t)
	b.trust = mustSet(t, a)
	real, err := a.id.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.config(t)
	cfg.Certificates = []tls.Certificate{{Certificate: real.Certificate, PrivateKey: m.id.priv}}
	addr, done := serve(t, cfg)
	_, _, err = dial(addr, b.config(t))
	if err == nil || errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("client facing a stolen certificate: %v, want a bad handshake signature", err)
	}
	<-done
}

func TestVerifyPinnedRefusesOtherCertificates(t *testing.T) {
	a, other := newNode(t), newNode(t)
	verify := VerifyPinned(mustSet(t, a, other).Lookup)
	good, _ := a.id.Certificate()
	if err := verify(good.Certificate, nil); err != nil {
		t.Fatalf("a's own certificate: %v", err)
	}

	// a's key in a certificate signed by another key.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotAfter: time.Now().Add(time.Hour)}
	otherCert, _ := other.id.Certificate()
	forged, err := x509.CreateCertificate(rand.Reader, tmpl, otherCert.Leaf, a.id.priv.Public(), other.id.priv)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecCert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ecKey.PublicKey, ecKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		certs [][]byte
		want  string
	}{
		{"none", nil, "presented 0 certificates"},
		{"chain", [][]byte{good.Certificate[0], good.Certificate[0]}, "presented 2 certificates"},
		{"garbage", [][]byte{[]byte("not a certificate")}, "peer certificate: x509"},
		{"not self-signed", [][]byte{forged}, "is not signed by that key"},
		{"ecdsa", [][]byte{ecCert}, "carries a ECDSA key, not an Ed25519 node key"},
	} {
		if err := verify(tt.certs, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}
