package streamserver

import (
	"crypto/tls"
	"net"
	"time"
)

// A TLS client reads a plain Error frame sent before its handshake as a
// peer that "does not speak TLS". So with TLS configured, a connection
// refused before it is served (busy: --max-connections) first completes
// the handshake, under refuseTimeout, and gets its Error inside TLS.
// Handshakes cost CPU, and refusing is what a server does when it has
// too much to do: at most maxTLSRefusals run at once, and beyond that a
// refused connection is just closed.
const (
	refuseTimeout  = 2 * time.Second
	maxTLSRefusals = 4
)

// refuseHandshake runs the server side of the TLS handshake of a
// connection about to be refused, within nc's deadline. ok false: the
// connection is to be closed unanswered (too many refusals at once, or
// the handshake failed). With ok true, the caller releases s.refusing.
func (s *Server) refuseHandshake(nc net.Conn) (*tls.Conn, bool) {
	select {
	case s.refusing <- struct{}{}:
	default:
		return nil, false
	}
	tc := tls.Server(nc, s.peerTLS)
	if err := tc.Handshake(); err != nil {
		<-s.refusing
		return nil, false
	}
	return tc, true
}
