// Command plasma-stream-server moves objects between Plasma stores on
// different machines (COPY / TAKE / SYNC).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/streaming"
)

func main() {
	if err := command().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "plasma-stream-server:", err)
		os.Exit(1)
	}
}

// options are the command's flags: cfg starts as
// streamserver.DefaultConfig, so every flag's default is the config's.
type options struct {
	cfg                          streamserver.Config
	streaming                    streaming.AppOptions
	timeoutMs                    int64
	level, logFormat, configFile string
}

func newOptions() *options {
	cfg := streamserver.DefaultConfig()
	return &options{cfg: cfg, timeoutMs: cfg.PlasmaTimeout.Milliseconds(), level: cliutil.DefaultLogLevel}
}

func command() *cobra.Command {
	o := newOptions()
	cmd := &cobra.Command{
		Use:   "plasma-stream-server [OPTIONS]",
		Short: "Plasma Stream server",
		Long: `Plasma Stream server: moves objects between Plasma stores on different
machines. Peers COPY and TAKE objects from it; clients ask it to SYNC
objects from other servers into its store.

Before starting a Plasma Stream server, start a Plasma store on the same
machine (plasma-store-server); otherwise the stream server fails to start.`,
		Version:       cliutil.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.config(cmd.Flags())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			srv, err := streamserver.New(ctx, cfg)
			if err != nil {
				return err
			}
			reloadOnHangup(ctx, srv)
			return srv.Serve(ctx)
		},
	}
	o.define(cmd.Flags())
	cmd.SetVersionTemplate("plasma-stream-server {{.Version}}\n")
	return cmd
}

// config is the server's configuration from the flags and the --config
// file.
func (o *options) config(fs *pflag.FlagSet) (streamserver.Config, error) {
	if o.configFile != "" {
		if err := cliutil.ApplyConfigFile(fs, o.configFile); err != nil {
			return streamserver.Config{}, err
		}
	}
	log, err := cliutil.NewLogger(o.level, o.logFormat)
	if err != nil {
		return streamserver.Config{}, err
	}
	cfg := o.cfg
	cfg.Logger = log
	if names, _ := o.streaming.Get(streaming.OptStoreStreamers).([]string); len(names) > 0 {
		cfg.Streaming = o.streaming
	}
	if o.timeoutMs <= 0 {
		return cfg, fmt.Errorf("--plasma-timeout must be at least 1 ms, got %d", o.timeoutMs)
	}
	cfg.PlasmaTimeout = time.Duration(o.timeoutMs) * time.Millisecond
	if cfg.RequestMemory == 0 {
		return cfg, errors.New("--request-memory 0: want a size such as 256MiB or 2GiB")
	}
	return cfg, cfg.Validate()
}

// reloadOnHangup reloads the trust file on each SIGHUP until ctx ends;
// connections stay, except those of keys the new file no longer holds.
func reloadOnHangup(ctx context.Context, srv *streamserver.Server) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				srv.ReloadTrust() // logs the outcome; a bad file keeps the keys in use
			}
		}
	}()
}

func (o *options) define(f *pflag.FlagSet) {
	cfg := &o.cfg
	f.StringVarP(&cfg.PrivateKey, "private-key", "k", cfg.PrivateKey, "this node's private key FILE (plasma keygen): with --trusted-keys, every connection runs mutual TLS 1.3 with pinned keys")
	f.StringVar(&cfg.TrustedKeys, "trusted-keys", cfg.TrustedKeys, "trust FILE: the public keys allowed to connect, one per line: KEY NAME read|write|admin|none (none: refused, even if registered in the cluster; reloaded on SIGHUP)")
	f.StringVar(&cfg.TLS.Cert, "tls-cert", cfg.TLS.Cert, "CA mode: this node's certificate FILE (PEM, plasma ca issue), with --tls-key and --tls-ca; excludes -k/--trusted-keys (reloaded on SIGHUP)")
	f.StringVar(&cfg.TLS.Key, "tls-key", cfg.TLS.Key, "CA mode: the private key FILE of --tls-cert (PEM, mode 0600)")
	f.StringVar(&cfg.TLS.CA, "tls-ca", cfg.TLS.CA, "CA mode: the CA certificate(s) FILE (PEM) every peer's certificate must chain to")
	f.Var(&cfg.TLSDefaultRole, "tls-default-role", "CA mode: role of a certificate without a plasma:ROLE organizational unit: read, write, admin or none (refused)")
	f.IntVarP(&cfg.MaxConnections, "max-connections", "c", cfg.MaxConnections, "Maximum number of TCP connections accepted by this server")
	f.StringVarP(&cfg.PlasmaSocket, "plasma-socket", "s", cfg.PlasmaSocket, "Unix socket bound to the local Plasma Store")
	f.StringVar(&cfg.SocketOwner, "socket-owner", cfg.SocketOwner, "also trust a store socket owned by this USER or UID (by default only one owned by this user or root is used)")
	f.Int64VarP(&o.timeoutMs, "plasma-timeout", "t", o.timeoutMs, "The amount of time in milliseconds to wait before requests to Plasma Store time out")
	f.IntVarP(&cfg.Port, "port", "p", cfg.Port, "TCP port for the server to listen on (0: any free port)")
	f.StringVar(&cfg.Bind, "bind", cfg.Bind, "address to listen on (default: all interfaces, IPv4 and IPv6, serving only loopback peers unless --allow-unauthenticated or keys are given)")
	f.BoolVar(&cfg.AllowUnauthenticated, "allow-unauthenticated", cfg.AllowUnauthenticated, "with --bind at its default, serve every host that reaches the port, not only loopback peers: any of them can read, take and delete objects")
	f.StringVar(&cfg.NodeName, "node-name", cfg.NodeName, "name of this node in logs and replies")
	f.StringVar(&cfg.MetricsAddr, "http-addr", cfg.MetricsAddr, "serve HTTP on this address (e.g. :9121): the dashboard (/), Prometheus /metrics, /healthz (alive) and /readyz (store connected, cluster joined, state streamers healthy; reasons in the body); with keys, HTTPS requiring the read role but for the probes (docs/metrics.md)")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", cfg.MetricsAddr, "the same as --http-addr (its former name)")
	f.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", cfg.OTLPEndpoint, "export OpenTelemetry spans of SYNC, COPY, TAKE, FETCH, PULL, PREFETCH and DELETE (per peer and per object) to this OTLP/gRPC collector: host:port or http://host:port (plain), https://host:port (TLS); the trace context travels between nodes in the protocol")
	f.DurationVar(&cfg.IOTimeout, "io-timeout", cfg.IOTimeout, "deadline of each network step; a peer silent for longer is dropped")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "a connection silent this long between requests is closed")
	f.DurationVar(&cfg.ResumeKeep, "resume-keep", cfg.ResumeKeep, "how long the verified part of a failed fetch or COPY is kept for the next one to resume from, within half the store's capacity (0: not at all)")
	f.IntVar(&cfg.SyncConcurrency, "sync-concurrency", cfg.SyncConcurrency, "peer requests of one SYNC run at once")
	cliutil.SizeVar(f, &cfg.RequestMemory, "request-memory", "memory all connections together may hold of requests being read; a request that does not fit is refused (a SYNC costs 2.5 times its size: the largest legal one, 1024 peers × 65,536 ids, needs 3.2GiB)")
	f.BoolVar(&cfg.Pprof, "debug-pprof", cfg.Pprof, "also serve Go's profiler at /debug/pprof/ on --http-addr")
	f.StringVar(&cfg.Cluster.Etcd, "etcd", cfg.Cluster.Etcd, `join a cluster: "embedded" (an etcd member in this process) or etcd client URLs, comma-separated`)
	f.StringVar(&cfg.Cluster.EtcdDir, "etcd-dir", cfg.Cluster.EtcdDir, "data directory of the embedded etcd member")
	f.StringVar(&cfg.Cluster.EtcdListen, "etcd-listen", cfg.Cluster.EtcdListen, "client address of the embedded etcd member")
	f.StringVar(&cfg.Cluster.Prefix, "etcd-prefix", cfg.Cluster.Prefix, "key prefix of the directory in etcd")
	f.StringVar(&cfg.Cluster.Advertise, "advertise", cfg.Cluster.Advertise, "HOST:PORT peers dial to reach this server (default: --bind or the node name, and --port)")
	f.StringArrayVar(&cfg.Cluster.Groups, "group", cfg.Cluster.Groups, "a group this node belongs to (repeatable)")
	f.DurationVar(&cfg.Cluster.LeaseTTL, "lease-ttl", cfg.Cluster.LeaseTTL, "lifetime of this node's registration without keep-alives: a dead node vanishes from the directory within it")
	f.DurationVar(&cfg.Cluster.EtcdTimeout, "etcd-timeout", cfg.Cluster.EtcdTimeout, "how long a cluster request waits for etcd before it fails with \"cluster directory unavailable\" (requests on local objects never wait for etcd)")
	f.StringVar(&cfg.Cluster.EtcdCert, "etcd-cert", cfg.Cluster.EtcdCert, "certificate FILE (PEM) this node presents to etcd; with --etcd-key and --etcd-ca etcd is reached over TLS, and an embedded member serves TLS and requires client certificates from --etcd-ca")
	f.StringVar(&cfg.Cluster.EtcdKey, "etcd-key", cfg.Cluster.EtcdKey, "private key FILE of --etcd-cert (mode 0600)")
	f.StringVar(&cfg.Cluster.EtcdCA, "etcd-ca", cfg.Cluster.EtcdCA, "CA certificate FILE that issued etcd's certificate (and, for an embedded member, its clients')")
	f.StringVar(&cfg.Cluster.ClusterRole, "cluster-role", cfg.Cluster.ClusterRole, "role of the node keys registered in the cluster directory: none, read, write or admin (default admin when etcd is secured with --etcd-cert, else none)")
	f.StringVar(&cfg.NATS.Servers, "nats", cfg.NATS.Servers, `NATS for state streaming and the NATS bridge: "embedded" (a NATS server with JetStream in this process) or NATS URLs, comma-separated`)
	f.StringVar(&cfg.NATS.Listen, "nats-listen", cfg.NATS.Listen, "client address of the embedded NATS server")
	f.StringVar(&cfg.NATS.Dir, "nats-dir", cfg.NATS.Dir, "JetStream data directory of the embedded NATS server")
	f.StringArrayVar(&cfg.NATS.Sites.Leafs, "nats-leaf", cfg.NATS.Sites.Leafs, "connect the embedded NATS server to another site's as a leaf node: nats-leaf://HOST:7422 (repeatable)")
	f.StringVar(&cfg.NATS.Sites.LeafListen, "nats-leaf-listen", cfg.NATS.Sites.LeafListen, "accept other sites' NATS servers as leaf nodes on HOST:PORT (NATS's port is 7422)")
	f.StringVar(&cfg.NATS.Sites.ConfigFile, "nats-config", cfg.NATS.Sites.ConfigFile, "start the embedded NATS server from this nats-server configuration FILE (cluster, gateways, leafnodes, accounts); --nats-listen and --nats-dir fill what it leaves out")
	f.StringVar(&cfg.NATS.Sites.Domain, "nats-domain", cfg.NATS.Sites.Domain, "JetStream domain of the embedded NATS server (default with leaf nodes: its server name)")
	f.StringVar(&cfg.Bridge.Prefix, "nats-prefix", cfg.Bridge.Prefix, "first token of the NATS bridge's subjects (<prefix>.import, <prefix>.blobs.<subject>, ...; default plasma)")
	f.StringArrayVar(&cfg.Bridge.ImportDirs, "import-dir", cfg.Bridge.ImportDirs, "NATS imports may read only files under this DIR (repeatable; default: any file this server's user can read)")
	f.StringArrayVar(&cfg.Bridge.Publish, "publish.subjects", cfg.Bridge.Publish, "a subject (wildcards allowed) this node may announce blobs on (repeatable; default: any); TOML [publish] subjects = [...]")
	f.StringArrayVar(&cfg.Bridge.Subscribe, "subscribe.subjects", cfg.Bridge.Subscribe, `replicate every blob announced on this subject: "SUBJECT" or "SUBJECT KEY[,KEY...]" for only those publishers (repeatable, wildcards allowed); TOML [subscribe] subjects = [...]`)
	f.DurationVar(&cfg.Bridge.Keep, "announce-keep", cfg.Bridge.Keep, "how long the NATS's JetStream keeps blob announcements for subscribers that were away (0: not kept: only nodes subscribed when a blob is announced replicate it)")
	o.streaming = streaming.DefineFlags(f)
	f.StringVar(&o.level, "log-level", o.level, "log level: debug, info, warn or error, optionally per component: info,transfer=debug,cluster=warn")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&o.configFile, "config", "", "TOML file with the same options (keys are the long flag names); flags win")
	f.BoolP("version", "V", false, "Prints version information")
	f.BoolP("help", "h", false, "Prints help information")
}
