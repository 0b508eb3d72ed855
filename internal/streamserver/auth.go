package streamserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/trust"
)

// Mutual TLS with pinned keys (docs/trust.md). A server given a key and a
// trust file runs a TLS 1.3 handshake on every accepted connection before
// it reads a protocol byte, and presents the same key when it dials other
// nodes; a peer whose key the trust file does not hold is refused at the
// handshake. Each request is then checked against the role of the peer's
// key as the trust file says now (a SIGHUP reload applies to the next
// request, and closes the connections of keys it removed).

// requestRoles is the role each request needs: what it does to THIS node.
// Reading its objects or the directory is read; bringing objects into its
// store or changing its groups is write; deleting objects, here (TAKE,
// DELETE) or cluster-wide, is admin. docs/stream-protocol.md and
// docs/trust.md list the same table.
var requestRoles = map[streamwire.Type]trust.Role{
	streamwire.TypePing:        trust.RoleRead,
	streamwire.TypeStat:        trust.RoleRead,
	streamwire.TypeList:        trust.RoleRead,
	streamwire.TypeCopy:        trust.RoleRead,
	streamwire.TypeRelay:       trust.RoleRead,
	streamwire.TypeRange:       trust.RoleRead,
	streamwire.TypeNodes:       trust.RoleRead,
	streamwire.TypeLocate:      trust.RoleRead,
	streamwire.TypeActivity:    trust.RoleRead,
	streamwire.TypeSync:        trust.RoleWrite,
	streamwire.TypePull:        trust.RoleWrite,
	streamwire.TypeFetch:       trust.RoleWrite,
	streamwire.TypePrefetch:    trust.RoleWrite,
	streamwire.TypeGroup:       trust.RoleWrite,
	streamwire.TypeTake:        trust.RoleAdmin,
	streamwire.TypeDeleteLocal: trust.RoleAdmin,
	streamwire.TypeDeleteAll:   trust.RoleAdmin,
}

// needs is the role a request needs; a type the table lacks needs admin,
// so that a request added without a thought for roles is not open to all.
func needs(t streamwire.Type) trust.Role {
	if r, ok := requestRoles[t]; ok {
		return r
	}
	return trust.RoleAdmin
}

// loadTrust reads the node key and the trust file, if configured, and
// makes the TLS configuration both ends of every connection use.
func (s *Server) loadTrust() error {
	if s.cfg.TLS.Given() {
		return s.loadCA()
	}
	if s.cfg.PrivateKey == "" {
		return nil
	}
	id, err := trust.LoadKey(s.cfg.PrivateKey)
	if err != nil {
		return err
	}
	if s.trust, err = trust.LoadStore(s.cfg.TrustedKeys); err != nil {
		return err
	}
	if s.peerTLS, err = trust.TLSConfig(id, s.lookupKey); err != nil {
		return err
	}
	s.key = id.Public()
	s.memberRole, _ = s.cfg.Cluster.MemberRole() // Validate checked it
	s.log.With("component", "trust").Info("mutual TLS with pinned keys", "key", id.Public().String(), "trusted_keys", s.trust.Set().Len(), "trust_file", s.trust.Path())
	switch {
	case s.cfg.Cluster.Etcd == "":
	case s.memberRole == trust.RoleNone && s.cfg.Cluster.EtcdSecured():
		s.log.With("component", "trust").Info("keys registered in the cluster directory are not trusted (--cluster-role none): peers must be in the trust file")
	case s.memberRole == trust.RoleNone:
		s.log.With("component", "trust").Info("keys registered in the cluster directory are not trusted: etcd is not secured with client certificates (--etcd-cert, --etcd-key, --etcd-ca); peers must be in the trust file")
	default:
		s.log.With("component", "trust").Info("trusting the node keys registered in the cluster directory", "role", s.memberRole.String())
	}
	return nil
}

// lookupKey finds a peer's key: in the trust file first (which may give
// a registered node another role, or refuse it with the role none), then,
// in a cluster whose etcd is secured, among the keys of the live
// registrations, with the role --cluster-role gives them. It is what the
// TLS handshake checks and what each request's role comes from.
func (s *Server) lookupKey(k trust.PublicKey) (trust.Entry, bool) {
	if e, ok := s.trust.Lookup(k); ok {
		return e, true
	}
	if s.trust.Refuses(k) {
		return trust.Entry{}, false
	}
	mem := s.members.Load()
	if mem == nil || s.memberRole == trust.RoleNone {
		return trust.Entry{}, false
	}
	n, ok := mem.ByKey(k.String())
	if !ok {
		return trust.Entry{}, false
	}
	return trust.Entry{Key: k, Name: "node:" + n.Name, Role: s.memberRole}, true
}

// followMembers starts using the cluster's registered keys (after the
// node joined).
func (s *Server) followMembers() {
	if s.node == nil || s.node.Members() == nil || s.trust == nil {
		return
	}
	s.members.Store(s.node.Members())
}

// membersChanged closes the connections of nodes that are no longer
// registered (and not in the trust file).
func (s *Server) membersChanged() {
	if s.trust == nil || s.memberRole == trust.RoleNone {
		return
	}
	if n := s.dropUntrusted(); n > 0 {
		s.log.With("component", "trust").Info("closed the connections of nodes no longer registered", "connections_closed", n)
	}
}

// dropUntrusted closes the connections whose key is no longer trusted
// and returns how many.
func (s *Server) dropUntrusted() int {
	closed := 0
	s.mu.Lock()
	defer s.mu.Unlock()
	for nc, k := range s.keyed {
		if _, ok := s.lookupKey(k); !ok {
			nc.Close()
			closed++
		}
	}
	return closed
}

// peerKey is the verified key of a TLS connection's peer, or in CA mode
// (cert set) its verified certificate.
type peerKey struct {
	key  trust.PublicKey
	cert *trust.Peer
}

// secure runs the TLS handshake on an accepted connection, within the
// I/O timeout, and returns the connection to serve and its peer's key;
// nil when the server has no key. Nothing of the protocol is read before
// it succeeds.
func (s *Server) secure(ctx context.Context, nc net.Conn) (net.Conn, *peerKey, error) {
	if s.peerTLS == nil {
		return nc, nil, nil
	}
	tc := tls.Server(nc, s.peerTLS)
	tc.SetDeadline(time.Now().Add(s.cfg.IOTimeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, fmt.Errorf("TLS handshake: %w", err)
	}
	tc.SetDeadline(time.Time{})
	if s.ca != nil {
		pk, err := s.ca.admit(nc, tc.ConnectionState())
		return tc, pk, err
	}
	k, err := trust.ConnKey(tc.ConnectionState())
	if err != nil {
		return nil, nil, fmt.Errorf("TLS handshake: %w", err)
	}
	s.mu.Lock()
	s.keyed[nc] = k
	s.mu.Unlock()
	return tc, &peerKey{key: k}, nil
}

// permit checks a request against the peer's role as the trust file says
// now. A refusal is sent as an Error of status NotPermitted; gone reports
// that the key is no longer trusted at all (the connection then ends).
func (s *Server) permit(pk *peerKey, t streamwire.Type) (refusal *streamwire.ErrorReply, gone bool) {
	if pk == nil {
		return nil, false
	}
	if pk.cert != nil {
		return notPermitted(pk.cert.Name, pk.cert.Role, t), false
	}
	e, ok := s.lookupKey(pk.key)
	if !ok {
		return &streamwire.ErrorReply{Status: streamwire.StatusNotPermitted, Message: fmt.Sprintf(
			"not permitted: key %s is no longer trusted by %s (not in its trust file, nor a registered node)", pk.key, s.cfg.NodeName)}, true
	}
	return notPermitted(e.Name, e.Role, t), false
}

// notPermitted is the refusal of a request of type t to the peer named
// name with role, or nil if the role allows it.
func notPermitted(name string, role trust.Role, t streamwire.Type) *streamwire.ErrorReply {
	need := needs(t)
	if role.Allows(need) {
		return nil
	}
	return &streamwire.ErrorReply{Status: streamwire.StatusNotPermitted, Message: fmt.Sprintf(
		"not permitted: key %s has role %s; %s needs %s", name, role, t, need)}
}

// ReloadTrust reads the trust file again (on SIGHUP): new handshakes and
// the next request of every connection see the new file, and the
// connections of keys it no longer holds are closed. On error (the file
// does not parse) the keys in use stay. A server without keys has nothing
// to reload.
func (s *Server) ReloadTrust() error {
	if s.ca != nil {
		return s.reloadCA()
	}
	if s.trust == nil {
		return nil
	}
	if err := s.trust.Reload(); err != nil {
		s.log.With("component", "trust").Error("trust file not reloaded", "err", err)
		return err
	}
	closed := s.dropUntrusted()
	s.log.With("component", "trust").Info("trust file reloaded", "trusted_keys", s.trust.Set().Len(), "connections_closed", closed)
	return nil
}
