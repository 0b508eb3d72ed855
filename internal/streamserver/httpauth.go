package streamserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/plasmastream/plasmastream/internal/trust"
)

// The HTTP endpoint (--http-addr) of a server with keys requires the
// trust its stream port does. It serves HTTPS with the node's own
// certificate (pinned key or CA-issued) and asks for a client
// certificate: one the node does not trust is refused at the handshake,
// as on the stream port. /healthz and /readyz answer without a
// certificate (a Kubernetes probe or a load balancer has none, and they
// tell nothing but "up"); everything else — /metrics, the dashboard and
// its API, the profiler — needs a certificate whose key or CA role
// allows read. Without keys the endpoint is plain HTTP, open as /metrics
// always was: bind it to loopback (or a private network) then.

// serveHTTP starts the HTTP endpoint on ln and the history it charts.
func (s *Server) serveHTTP(ln net.Listener) {
	s.history = &history{}
	var hctx context.Context
	hctx, s.histStop = context.WithCancel(context.Background())
	s.histDone = make(chan struct{})
	go s.recordHistory(hctx, s.histDone)
	s.httpSrv = &http.Server{Handler: s.metrics.handler(s, s.cfg.Pprof, s.httpAuth), ReadHeaderTimeout: 10 * time.Second,
		// Refused handshakes (untrusted certificates) land here.
		ErrorLog: slog.NewLogLogger(s.log.With("component", "http").Handler(), slog.LevelInfo)}
	if s.peerTLS == nil {
		go s.httpSrv.Serve(ln)
		return
	}
	s.httpSrv.TLSConfig = s.httpTLS()
	go s.httpSrv.Serve(tls.NewListener(ln, s.httpSrv.TLSConfig))
}

// httpTLS is the node's server TLS configuration with the client
// certificate optional (verified when given).
func (s *Server) httpTLS() *tls.Config {
	optional := func(c *tls.Config) *tls.Config {
		c = c.Clone()
		c.ClientAuth = tls.RequestClientCert
		if v := c.VerifyPeerCertificate; v != nil {
			c.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
				if len(raw) == 0 {
					return nil
				}
				return v(raw, chains)
			}
		}
		if v := c.VerifyConnection; v != nil {
			c.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return nil
				}
				return v(cs)
			}
		}
		c.NextProtos = []string{"http/1.1"}
		return c
	}
	if s.ca == nil {
		return optional(s.peerTLS)
	}
	base := s.peerTLS
	return &tls.Config{MinVersion: tls.VersionTLS13, GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		c, err := base.GetConfigForClient(h) // the current certificate and CA (SIGHUP rotates them)
		if err != nil {
			return nil, err
		}
		return optional(c), nil
	}}
}

// httpAuth lets a request through if the server has no keys, or if its
// client certificate's key or CA role allows read now.
func (s *Server) httpAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.peerTLS == nil {
			h.ServeHTTP(w, r)
			return
		}
		name, role, err := s.httpPeer(r.TLS)
		if err == nil && !role.Allows(trust.RoleRead) {
			err = fmt.Errorf("%s has role %s; the dashboard and /metrics need read", name, role)
		}
		if err != nil {
			http.Error(w, fmt.Sprintf("forbidden: %v. %s requires a trusted client certificate: run `plasma dashboard --node ADDR` with your key and open the address it prints (docs/metrics.md)", err, s.cfg.NodeName), http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// httpPeer is the name and role of a request's verified client
// certificate.
func (s *Server) httpPeer(cs *tls.ConnectionState) (string, trust.Role, error) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return "", trust.RoleNone, fmt.Errorf("no client certificate")
	}
	if s.ca != nil {
		p, err := s.ca.tls.Verify(cs.PeerCertificates, x509.ExtKeyUsageClientAuth)
		if err != nil {
			return "", trust.RoleNone, err
		}
		return p.Name, p.Role, nil
	}
	k, err := trust.PeerKey(cs.PeerCertificates[0])
	if err != nil {
		return "", trust.RoleNone, err
	}
	e, ok := s.lookupKey(k)
	if !ok {
		return "", trust.RoleNone, fmt.Errorf("key %s is not trusted", k)
	}
	return e.Name, e.Role, nil
}
