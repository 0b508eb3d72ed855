package node

import (
	"context"
	"crypto/tls"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/singleflight"

	"github.com/plasmastream/plasmastream/internal/activity"
	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/etcdembed"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/store"
)

// ClusterConfig joins a server to the cluster directory.
type ClusterConfig struct {
	Etcd       string        // "" standalone, "embedded", or client URLs separated by commas
	EtcdDir    string        // data of the embedded member
	EtcdListen string        // client address of the embedded member (host:port)
	Prefix     string        // key prefix (default /plasma/)
	Advertise  string        // host:port peers dial (default: derived from --bind and the port)
	Groups     []string      // groups this node belongs to
	LeaseTTL   time.Duration // registration lease (default 10 s)
	// EtcdTimeout bounds each directory operation a request waits for
	// (default cluster.DefaultOpTimeout, 3 s): with etcd down, cluster
	// requests fail within it with StatusClusterUnavailable.
	EtcdTimeout time.Duration
	// EtcdCert, EtcdKey and EtcdCA (PEM files, all three or none) secure
	// etcd: this node presents the certificate to etcd and accepts only
	// an etcd whose certificate the CA issued; an embedded member serves
	// TLS with them and requires client certificates from the CA.
	EtcdCert, EtcdKey, EtcdCA string
	// ClusterRole is the role a node key registered in the directory
	// gets on this node (docs/trust.md): "" (default: admin when etcd is
	// secured by EtcdCert/EtcdKey/EtcdCA, else none), none, read, write
	// or admin.
	ClusterRole string
}

// Config of a Node.
type Config struct {
	Name        string        // this node's name
	Advertise   string        // host:port peers dial to reach this node
	IOTimeout   time.Duration // each network step with a peer
	Concurrency int           // objects of one cluster FETCH fetched at once
	Cluster     ClusterConfig // Cluster.Etcd "": standalone
	// Use returns the local store under a reference, or why it cannot (an
	// *streamwire.ErrorReply of status StoreUnavailable while it is down).
	Use          func() (Store, error)
	Stats        *transfer.Stats     // transfer counters, shared with the server
	FetchSeconds prometheus.Observer // durations of fetches (nil: none)
	Activity     *activity.Registry  // where fetches are recorded for the dashboard (nil: nowhere)
	Logger       *slog.Logger
	// TLS, if set, is this node's side of mutual TLS with every node it
	// dials (trust.TLSConfig): it presents the node's key and accepts only
	// peers whose key the trust file holds. nil: plain TCP.
	TLS *tls.Config
	// Key is this node's public key (64 hex), published with its
	// registration; "" without a key.
	Key string
	// OnMembers, if set, is called after every change of the registered
	// nodes' keys (see cluster.Members).
	OnMembers func()
	// Received, if set, is told of every FETCH and PULL that ended here
	// (kind "FETCH" or "PULL"): state streaming's `transfers`.
	Received func(kind string, r streamwire.PeerResult)
}

// Store is the local store as one request uses it, under a reference:
// Release gives it back.
type Store struct {
	Client   *store.Client
	Partials *transfer.Partials // verified parts of failed fetches
	Release  func()
}

// Node is a stream server's part in a cluster (see the package doc). Its
// methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	fetches singleflight.Group // one fetch per object, shared by concurrent callers
	wg      sync.WaitGroup     // work that outlives its request

	member *etcdembed.Member // the embedded etcd, if any
	cli    *clientv3.Client
	dir    *cluster.Directory // nil when standalone
	mem    *cluster.Members   // the registered nodes; nil when standalone
	cold   coldTier           // the store's cold tier, as last asked
}

// New makes the node; with cfg.Cluster.Etcd set it joins the cluster:
// starts or connects to etcd, registers and registers the sealed objects
// of st (see Resync). st's subscription must already be in place.
func New(ctx context.Context, cfg Config, st *store.Client) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Stats == nil {
		cfg.Stats = &transfer.Stats{}
	}
	n := &Node{cfg: cfg, log: cfg.Logger}
	if cfg.Cluster.Etcd == "" {
		return n, nil
	}
	if err := n.join(ctx, st); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Close waits for the work that outlived its requests (its context must
// have ended), then leaves the cluster: the registration is revoked, and
// this node's locations vanish at once.
func (n *Node) Close() {
	n.wg.Wait()
	if n.dir != nil {
		n.dir.Close()
	}
	if n.cli != nil {
		n.cli.Close()
	}
	if n.member != nil {
		n.member.Close()
	}
}

// Members are the registered nodes, followed by a watch; nil when
// standalone.
func (n *Node) Members() *cluster.Members { return n.mem }

// useStore is the local store under a reference.
func (n *Node) useStore() (Store, error) { return n.cfg.Use() }

// holdsLocally reports whether the store has object id (false while the
// store is down).
func (n *Node) holdsLocally(ctx context.Context, id store.ObjectID) bool {
	sc, err := n.useStore()
	if err != nil {
		return false
	}
	defer sc.Release()
	ok, err := sc.Client.Contains(ctx, id)
	return err == nil && ok
}

// ClusterHealth is nil when standalone or registered in a reachable
// directory; otherwise why not (see cluster.Directory.Health).
func (n *Node) ClusterHealth() error {
	if n.dir == nil {
		return nil
	}
	return n.dir.Health()
}
