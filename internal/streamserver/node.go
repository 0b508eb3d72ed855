package streamserver

import (
	"context"
	"fmt"
	"net"

	"github.com/plasmastream/plasmastream/internal/node"
	"github.com/plasmastream/plasmastream/store"
)

// ClusterConfig joins a server to the cluster directory (see package
// node).
type ClusterConfig = node.ClusterConfig

// newNode makes the server's node, which answers PULL, DELETE and the
// cluster requests; with --etcd it joins the cluster, registering the
// sealed objects of st.
func (s *Server) newNode(ctx context.Context, st *store.Client) (*node.Node, error) {
	return node.New(ctx, node.Config{
		Name: s.cfg.NodeName, Advertise: s.advertise(), IOTimeout: s.cfg.IOTimeout,
		Concurrency: s.cfg.SyncConcurrency, Cluster: s.cfg.Cluster, Use: s.nodeStore,
		Stats: &s.stats, FetchSeconds: s.metrics.duration.WithLabelValues("fetch"), Logger: s.log.With("component", "cluster"), TLS: s.peerTLS,
		Key: s.publishedKey(), OnMembers: s.membersChanged, Activity: s.activity,
		Received: s.state.transferIn,
	}, st)
}

// publishedKey is the key registered with this node: "" without one.
func (s *Server) publishedKey() string {
	if s.trust == nil {
		return ""
	}
	return s.key.String()
}

// nodeStore is useStore for the node.
func (s *Server) nodeStore() (node.Store, error) {
	sc, err := s.useStore()
	if err != nil {
		return node.Store{}, err
	}
	return node.Store{Client: sc.st, Partials: sc.partials, Release: sc.release}, nil
}

// advertise is the address peers dial to reach this server.
func (s *Server) advertise() string {
	if a := s.cfg.Cluster.Advertise; a != "" {
		return a
	}
	port := s.ln.Addr().(*net.TCPAddr).Port
	host := s.cfg.Bind
	if host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
		host = s.cfg.NodeName
	}
	return net.JoinHostPort(host, fmt.Sprint(port))
}
