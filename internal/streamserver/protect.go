package streamserver

import (
	"net"
)

// Protected mode (as Redis's): a server with no key configured cannot
// tell one peer from another, so any host that reaches its port can read,
// TAKE and delete objects. Left at the default bind (all interfaces), it
// then serves loopback peers only, unless told --allow-unauthenticated; a
// server given --bind chose who can reach it.

// hasKey reports whether the server authenticates its peers (mutual TLS
// with -k/--private-key and --trusted-keys).
func (s *Server) hasKey() bool { return s.peerTLS != nil }

// protected reports whether only loopback peers are served.
func (s *Server) protected() bool {
	return !s.hasKey() && s.cfg.Bind == "" && !s.cfg.AllowUnauthenticated
}

// warnUnauthenticated says at start, in one line, what a server without
// keys exposes and to whom.
func (s *Server) warnUnauthenticated() {
	if s.hasKey() {
		return
	}
	serves := "every peer that reaches the port (--allow-unauthenticated)"
	switch {
	case s.protected():
		serves = "loopback peers only, as it has no key and listens on all interfaces; start it with --allow-unauthenticated or --bind ADDR to serve others"
	case s.cfg.Bind != "":
		serves = "every peer that reaches " + s.cfg.Bind
	}
	s.log.Warn("no node key: any host that reaches this server's port can read, take and delete its objects", "addr", s.ln.Addr().String(), "serving", serves)
}

// isLoopback reports whether a peer's address is a loopback one
// (127.0.0.0/8, ::1, an IPv4-mapped 127.x).
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
