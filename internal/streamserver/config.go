package streamserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/plasmastream/plasmastream/internal/bridge"
	"github.com/plasmastream/plasmastream/internal/natsconn"
	"github.com/plasmastream/plasmastream/internal/node"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/streaming"
)

// Config is everything plasma-stream-server needs; cmd fills it from
// flags (a TOML file sets the same flags). A zero field means its default
// (SetDefaults fills it), except where its comment gives the zero another
// meaning; DefaultConfig is what the binary starts from.
type Config struct {
	MaxConnections int    // --max-connections
	PlasmaSocket   string // --plasma-socket
	// SocketOwner is a user (name or uid) trusted to own PlasmaSocket
	// besides this process's user and root (--socket-owner); "": none.
	SocketOwner   string
	PlasmaTimeout time.Duration // --plasma-timeout (ms on the command line)
	Port          int           // --port; 0: any free port (read it from Addr)
	Bind          string        // --bind; "": all interfaces, serving loopback peers only unless AllowUnauthenticated
	// AllowUnauthenticated serves every peer when Bind is left at its
	// default (--allow-unauthenticated); otherwise a server without keys
	// serves only loopback peers there (protected mode).
	AllowUnauthenticated bool
	// PrivateKey is the node's key file (-k/--private-key, written by
	// plasma keygen) and TrustedKeys the trust file of the keys allowed
	// to connect, with their roles (--trusted-keys): both or neither.
	// With them every connection, in and out, runs mutual TLS 1.3 with
	// pinned keys, and each request is checked against its key's role.
	PrivateKey  string
	TrustedKeys string
	// TLS is CA mode (--tls-cert, --tls-key, --tls-ca; all three, and
	// neither PrivateKey nor TrustedKeys): every connection runs mutual
	// TLS 1.3 with certificates issued by the CA, the peer named by its
	// certificate's CommonName, with the role of its "plasma:<role>" OU or
	// else TLSDefaultRole (--tls-default-role; none: refused).
	TLS            trust.CAFiles
	TLSDefaultRole trust.Role
	// Listener, if set, is served instead of binding Bind and Port (a
	// test's wrapped listener); the server closes it.
	Listener    net.Listener
	NodeName    string // --node-name; "": the listening address
	MetricsAddr string // --metrics-addr; "": no metrics listener
	// OTLPEndpoint (--otlp-endpoint) exports spans of the requests that
	// move objects to this OTLP/gRPC collector; it sets the process's
	// tracer provider. "": no tracing.
	OTLPEndpoint    string
	IOTimeout       time.Duration // --io-timeout
	IdleTimeout     time.Duration // --idle-timeout, between requests
	SyncConcurrency int           // --sync-concurrency
	Pprof           bool          // --debug-pprof: profiler on the metrics address
	// ResumeKeep is how long a failed fetch's verified groups wait to be
	// resumed (--resume-keep); 0: they are not kept.
	ResumeKeep    time.Duration
	RequestMemory int64 // bytes all connections together may hold of requests being read (--request-memory)
	Cluster       ClusterConfig
	// NATS is the node's NATS (--nats, --nats-listen, --nats-dir): the
	// state streamer "nats" publishes there.
	NATS natsconn.Config
	// Bridge is the NATS bridge's configuration (it runs with NATS).
	Bridge BridgeConfig
	// Streaming holds the state streaming options (store.streamers,
	// streamers.file.*, ...: see package streaming); nil: off.
	Streaming streaming.AppOptions
	// Streamers are streaming services of the embedding program, fed
	// with the node's blocks beside those Streaming names.
	Streamers []streaming.StreamingService
	Logger    *slog.Logger // nil: discard
}

// DefaultEtcdListen is the client address of an embedded etcd member.
const DefaultEtcdListen = node.DefaultEtcdListen

// Defaults of the stream server.
const (
	DefaultMaxConnections  = 128
	DefaultPlasmaTimeout   = 10 * time.Millisecond
	DefaultIdleTimeout     = 5 * time.Minute
	DefaultSyncConcurrency = 16
	DefaultRequestMemory   = 256 << 20
	// DefaultResumeKeep is how long the verified part of a failed fetch is
	// kept for the next fetch of the object to resume from.
	DefaultResumeKeep = 2 * time.Minute
	// maxRequestMemory bounds --request-memory (a typo's "2PiB" would let
	// requests exhaust the machine's memory instead of being refused).
	maxRequestMemory = 1 << 50
)

// DefaultConfig is the configuration plasma-stream-server runs with when
// given no flags: SetDefaults' values, plus those whose zero means
// something else (the port, resuming, the node name).
func DefaultConfig() Config {
	c := Config{Port: streamwire.DefaultPort, ResumeKeep: DefaultResumeKeep, Bridge: BridgeConfig{Keep: bridge.DefaultKeep}}
	c.NodeName, _ = os.Hostname()
	c.SetDefaults()
	return c
}

// SetDefaults fills every zero field that has a default. It is the one
// place where defaults are set; New calls it.
func (c *Config) SetDefaults() {
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.PlasmaSocket == "" {
		c.PlasmaSocket = store.DefaultSocket
	}
	if c.PlasmaTimeout == 0 {
		c.PlasmaTimeout = DefaultPlasmaTimeout
	}
	if c.IOTimeout == 0 {
		c.IOTimeout = transfer.DefaultTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.SyncConcurrency == 0 {
		c.SyncConcurrency = DefaultSyncConcurrency
	}
	if c.RequestMemory == 0 {
		c.RequestMemory = DefaultRequestMemory
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Cluster.SetDefaults()
	c.NATS.SetDefaults()
}

// Validate reports the first bad value, naming its flag (a TOML file's
// keys are the same names).
func (c *Config) Validate() error {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--announce-keep", c.Bridge.Keep}, {"--plasma-timeout", c.PlasmaTimeout}, {"--io-timeout", c.IOTimeout}, {"--idle-timeout", c.IdleTimeout}, {"--resume-keep", c.ResumeKeep}} {
		if d.v < 0 {
			return fmt.Errorf("%s %v: a duration cannot be negative", d.flag, d.v)
		}
	}
	switch {
	case c.MaxConnections < 0:
		return fmt.Errorf("--max-connections %d: give a positive number", c.MaxConnections)
	case c.SyncConcurrency < 0:
		return fmt.Errorf("--sync-concurrency %d: give a positive number", c.SyncConcurrency)
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("--port %d: give a TCP port, 1 to 65535 (0: any free port)", c.Port)
	case (c.PrivateKey == "") != (c.TrustedKeys == ""):
		return errors.New("-k/--private-key and --trusted-keys go together: a node with a key must know whom to trust, and the reverse")
	case c.Cluster.ClusterRole != "" && c.PrivateKey == "":
		return errors.New("--cluster-role sets the role of node keys registered in the cluster: it needs this node's own key (-k/--private-key, --trusted-keys)")
	case c.TLS.Given() && (c.PrivateKey != "" || c.TrustedKeys != ""):
		return errors.New("--tls-cert/--tls-key/--tls-ca (CA mode) and -k/--private-key/--trusted-keys (pinned keys) exclude each other: give one or the other")
	case c.TLS.Check() != nil:
		return c.TLS.Check()
	case c.SocketOwner != "":
		if _, err := store.LookupUser(c.SocketOwner); err != nil {
			return fmt.Errorf("--socket-owner: %w", err)
		}
	}
	switch {
	case c.RequestMemory < 0 || c.RequestMemory > maxRequestMemory:
		return fmt.Errorf("--request-memory %d: want a size such as 256MiB or 2GiB, at most 1PiB", c.RequestMemory)
	}
	if err := c.NATS.Validate(); err != nil {
		return err
	}
	if err := c.Bridge.Validate(); err != nil {
		return err
	}
	return c.Cluster.Validate()
}
