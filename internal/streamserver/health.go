package streamserver

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Health endpoints on --http-addr, for Kubernetes probes and load
// balancers. /healthz answers 200 while the process serves HTTP at all
// (liveness: restart it if this fails). /readyz answers 200 only when
// the server can do its work: its store is connected and, in a cluster,
// it is registered in a reachable directory, and its state streamers
// deliver every block; otherwise 503. Both bodies
// list each check, one per line, with the reason of a failure.

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "ok: %s up %v\n", s.cfg.NodeName, time.Since(s.start).Round(time.Second))
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	var lines []string
	ready := true
	check := func(name string, err error) {
		if err != nil {
			ready = false
			lines = append(lines, fmt.Sprintf("%s: failed: %v", name, err))
			return
		}
		lines = append(lines, name+": ok")
	}
	st := s.storeState()
	var storeErr error
	if !st.Up {
		storeErr = fmt.Errorf("store at %s unreachable since %s; the server is reconnecting", s.cfg.PlasmaSocket, time.Unix(0, st.SinceNs).UTC().Format(time.RFC3339))
	}
	check("store", storeErr)
	if s.cfg.Cluster.Etcd != "" {
		err := errors.New("joining the cluster")
		if n := s.joined.Load(); n != nil {
			err = n.ClusterHealth()
		}
		check("cluster", err)
	}
	if s.state != nil {
		check("state streaming", s.state.health())
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}
