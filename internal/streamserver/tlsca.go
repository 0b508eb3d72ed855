package streamserver

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"sync"

	"github.com/plasmastream/plasmastream/internal/trust"
)

// CA mode (--tls-cert, --tls-key, --tls-ca; docs/trust.md). Every
// connection, in and out, runs TLS 1.3 with certificates the CA issued: a
// peer is its certificate's CommonName, with the role of its
// "plasma:<role>" unit or --tls-default-role, and one without a role is
// refused at the handshake. Requests are then checked against that role
// as in pinned mode. The TLS configuration reads the files' current
// content at each handshake, so a SIGHUP rotates the certificate and the
// CA for the next connection, in and out, and closes the connections
// whose certificates the new CA no longer verifies.

// caMode is the server's CA-mode state.
type caMode struct {
	tls *trust.CATLS

	mu    sync.Mutex
	peers map[net.Conn]*trust.Peer // verified peers of open connections, by raw socket
}

// loadCA reads the three files and makes the TLS configuration of both
// ends of every connection.
func (s *Server) loadCA() error {
	ct, err := trust.LoadCATLS(s.cfg.TLS, s.cfg.TLSDefaultRole)
	if err != nil {
		return err
	}
	s.ca = &caMode{tls: ct, peers: map[net.Conn]*trust.Peer{}}
	s.peerTLS = ct.Config()
	s.log.Info("mutual TLS with CA-issued certificates", "cert", s.cfg.TLS.Cert, "name", ct.Name(), "ca", s.cfg.TLS.CA,
		"default_role", s.cfg.TLSDefaultRole.String())
	return nil
}

// admit records the verified peer of a completed handshake on raw
// socket nc (the server config's VerifyConnection has already checked
// its chain and role).
func (m *caMode) admit(nc net.Conn, cs tls.ConnectionState) (*peerKey, error) {
	p, err := m.tls.Verify(cs.PeerCertificates, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.peers[nc] = &p
	m.mu.Unlock()
	return &peerKey{cert: &p}, nil
}

// forget drops a closed connection's peer.
func (m *caMode) forget(nc net.Conn) {
	m.mu.Lock()
	delete(m.peers, nc)
	m.mu.Unlock()
}

// reloadCA reads the three files again (on SIGHUP). A file that fails
// keeps the configuration in use; otherwise the connections whose
// certificates do not verify against the new CA are closed.
func (s *Server) reloadCA() error {
	if err := s.ca.tls.Reload(); err != nil {
		s.log.Error("TLS certificate and CA not reloaded", "err", err)
		return err
	}
	closed := 0
	m := s.ca
	m.mu.Lock()
	for nc, p := range m.peers {
		if _, err := m.tls.Verify(p.Chain, x509.ExtKeyUsageClientAuth); err != nil {
			s.log.Info("closing a connection: its certificate no longer verifies", "peer", nc.RemoteAddr().String(), "cert", p.Name, "err", err)
			nc.Close()
			closed++
		}
	}
	m.mu.Unlock()
	s.log.Info("TLS certificate and CA reloaded", "name", m.tls.Name(), "connections_closed", closed)
	return nil
}
