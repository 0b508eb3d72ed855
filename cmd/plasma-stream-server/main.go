// Command plasma-stream-server moves objects between Plasma stores on
// different machines (COPY / TAKE / SYNC).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/streamserver"
)

func main() {
	if err := command().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "plasma-stream-server:", err)
		os.Exit(1)
	}
}

func command() *cobra.Command {
	var cfg streamserver.Config
	var timeoutMs int64
	var ioTimeout, idleTimeout time.Duration
	var level, configFile, requestMemory string
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
			if configFile != "" {
				if err := cliutil.ApplyConfigFile(cmd.Flags(), configFile); err != nil {
					return err
				}
			}
			log, err := cliutil.NewLogger(level)
			if err != nil {
				return err
			}
			if timeoutMs <= 0 {
				return fmt.Errorf("--plasma-timeout must be at least 1 ms, got %d", timeoutMs)
			}
			cfg.PlasmaTimeout = time.Duration(timeoutMs) * time.Millisecond
			rm, err := cliutil.ParseSize(requestMemory)
			if err != nil || rm == 0 || rm > 1<<50 {
				return fmt.Errorf("--request-memory %q: want a size such as 256MiB or 2GiB", requestMemory)
			}
			cfg.RequestMemory = int64(rm)
			cfg.IOTimeout, cfg.IdleTimeout = ioTimeout, idleTimeout
			if cfg.ResumeKeep == 0 {
				cfg.ResumeKeep = -1 // the flag's 0 means none; Config's 0 means the default
			}
			cfg.Logger = log
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			srv, err := streamserver.New(ctx, cfg)
			if err != nil {
				return err
			}
			return srv.Serve(ctx)
		},
	}
	host, _ := os.Hostname()
	f := cmd.Flags()
	f.IntVarP(&cfg.MaxConnections, "max-connections", "c", streamserver.DefaultMaxConnections, "Maximum number of TCP connections accepted by this server")
	f.StringVarP(&cfg.PlasmaSocket, "plasma-socket", "s", streamserver.DefaultPlasmaSocket, "Unix socket bound to the local Plasma Store")
	f.Int64VarP(&timeoutMs, "plasma-timeout", "t", 10, "The amount of time in milliseconds to wait before requests to Plasma Store time out")
	f.IntVarP(&cfg.Port, "port", "p", streamserver.DefaultPort, "TCP port for the server to listen on")
	f.StringVar(&cfg.Bind, "bind", "", "address to listen on (default: all interfaces, IPv4 and IPv6)")
	f.StringVar(&cfg.NodeName, "node-name", host, "name of this node in logs and replies")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics on this address (e.g. :9121) at /metrics")
	f.DurationVar(&ioTimeout, "io-timeout", 30*time.Second, "deadline of each network step; a peer silent for longer is dropped")
	f.DurationVar(&idleTimeout, "idle-timeout", streamserver.DefaultIdleTimeout, "a connection silent this long between requests is closed")
	f.DurationVar(&cfg.ResumeKeep, "resume-keep", streamserver.DefaultResumeKeep, "how long the verified part of a failed fetch or COPY is kept for the next one to resume from, within half the store's capacity (0: not at all)")
	f.IntVar(&cfg.SyncConcurrency, "sync-concurrency", streamserver.DefaultSyncConcurrency, "peer requests of one SYNC run at once")
	f.StringVar(&requestMemory, "request-memory", "256MiB", "memory all connections together may hold of requests being read; a request that does not fit is refused (a SYNC costs 2.5 times its size: the largest legal one, 1024 peers × 65,536 ids, needs 3.2GiB)")
	f.BoolVar(&cfg.Pprof, "debug-pprof", false, "also serve Go's profiler at /debug/pprof/ on --metrics-addr")
	f.StringVar(&cfg.Cluster.Etcd, "etcd", "", `join a cluster: "embedded" (an etcd member in this process) or etcd client URLs, comma-separated`)
	f.StringVar(&cfg.Cluster.EtcdDir, "etcd-dir", "", "data directory of the embedded etcd member")
	f.StringVar(&cfg.Cluster.EtcdListen, "etcd-listen", "127.0.0.1:2379", "client address of the embedded etcd member")
	f.StringVar(&cfg.Cluster.Prefix, "etcd-prefix", "/plasma/", "key prefix of the directory in etcd")
	f.StringVar(&cfg.Cluster.Advertise, "advertise", "", "HOST:PORT peers dial to reach this server (default: --bind or the node name, and --port)")
	f.StringArrayVar(&cfg.Cluster.Groups, "group", nil, "a group this node belongs to (repeatable)")
	f.DurationVar(&cfg.Cluster.LeaseTTL, "lease-ttl", 10*time.Second, "lifetime of this node's registration without keep-alives: a dead node vanishes from the directory within it")
	f.DurationVar(&cfg.Cluster.EtcdTimeout, "etcd-timeout", cluster.DefaultOpTimeout, "how long a cluster request waits for etcd before it fails with \"cluster directory unavailable\" (requests on local objects never wait for etcd)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&configFile, "config", "", "TOML file with the same options (keys are the long flag names); flags win")
	f.BoolP("version", "V", false, "Prints version information")
	f.BoolP("help", "h", false, "Prints help information")
	cmd.SetVersionTemplate("plasma-stream-server {{.Version}}\n")
	return cmd
}
