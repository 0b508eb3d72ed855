// Command plasma-store-server runs the local shared-memory object store.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/internal/storeserver"
)

func main() {
	if err := command().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "plasma-store-server:", err)
		os.Exit(1)
	}
}

// options are the command's flags: cfg starts as storeserver.DefaultConfig,
// so every flag's default is the config's.
type options struct {
	cfg        storeserver.Config
	level      string
	logFormat  string
	socketMode string
	configFile string
}

func newOptions() *options {
	cfg := storeserver.DefaultConfig()
	return &options{cfg: cfg, level: cliutil.DefaultLogLevel, socketMode: fmt.Sprintf("%04o", uint32(cfg.SocketMode))}
}

func command() *cobra.Command {
	o := newOptions()
	cmd := &cobra.Command{
		Use:   "plasma-store-server -m SIZE [-s SOCKET] [-d DIR]",
		Short: "Plasma store: a local shared-memory object store",
		Long: `Plasma store: a local shared-memory object store.

Processes on this machine create, seal, get and delete immutable objects in
one shared-memory arena of SIZE bytes, zero-copy. The arena is reserved at
start, so the store never fails later because shared memory ran out.`,
		Version:       cliutil.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.config(cmd.Flags())
			if err != nil {
				return err
			}
			srv, err := storeserver.New(cfg)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return srv.Serve(ctx)
		},
	}
	o.define(cmd.Flags())
	cmd.SetVersionTemplate("plasma-store-server {{.Version}}\n")
	return cmd
}

// config is the store's configuration from the flags.
func (o *options) config(fs *pflag.FlagSet) (storeserver.Config, error) {
	if o.configFile != "" {
		if err := cliutil.ApplyConfigFile(fs, o.configFile); err != nil {
			return o.cfg, err
		}
	}
	cfg := o.cfg
	if !fs.Changed("memory") {
		return cfg, errors.New("-m/--memory is required: the bytes of shared memory to reserve, e.g. -m 1GiB")
	}
	log, err := cliutil.NewLogger(o.level, o.logFormat)
	if err != nil {
		return cfg, err
	}
	cfg.Logger = log
	if cfg.SocketMode, err = storeserver.ParseSocketMode(o.socketMode); err != nil {
		return cfg, err
	}
	if cfg.HugePages && cfg.Dir == storeserver.DefaultDir {
		cfg.Dir = "" // hugepages without a hugetlbfs directory: a MFD_HUGETLB memfd
	}
	if cfg.WaitMemory == 0 {
		return cfg, errors.New("--blocked-get-memory 0 would fail every Get that waits; give a size such as 64MiB")
	}
	return cfg, cfg.Validate()
}

func (o *options) define(f *pflag.FlagSet) {
	cfg := &o.cfg
	cliutil.SizeVarP(f, &cfg.Capacity, "memory", "m", "bytes of shared memory for objects (e.g. 1073741824, 512MiB, 1G)")
	f.StringVarP(&cfg.Socket, "socket", "s", cfg.Socket, "unix socket the store listens on")
	f.StringVar(&o.socketMode, "socket-mode", o.socketMode, "permission bits of the socket, octal: 0600 lets only this user connect; 0660 with --socket-group shares the store with a group")
	f.StringVar(&cfg.SocketGroup, "socket-group", cfg.SocketGroup, "group NAME or GID to give the socket (you must be root or a member); with --socket-mode 0660 its members can use the store")
	f.StringVarP(&cfg.Dir, "directory", "d", cfg.Dir, `directory of the shared-memory file (tmpfs or hugetlbfs); "" for a memfd`)
	f.BoolVar(&cfg.HugePages, "hugepages", cfg.HugePages, "back the arena with 2 MiB huge pages (needs vm.nr_hugepages or a hugetlbfs -d)")
	f.StringVar(&o.level, "log-level", o.level, "log level: debug, info, warn or error, optionally per component: info,transfer=debug,cluster=warn")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.IntVar(&cfg.MaxClients, "max-clients", cfg.MaxClients,
		"most clients connected at once; one more is told \"store busy\" and closed. 0: the default, half of the open-file limit (RLIMIT_NOFILE) minus 32 and a sixteenth of it (kept for the arena and other descriptors): an idle client holds two descriptors")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", cfg.MetricsAddr, "serve Prometheus /metrics and /healthz on this address (e.g. 127.0.0.1:9123; docs/metrics.md); \"\": none")
	cliutil.SizeVar(f, &cfg.WaitMemory, "blocked-get-memory", "memory that blocked Gets may hold, all clients together; a Get beyond it fails with \"store busy\"")
	f.StringVar(&o.configFile, "config", "", "TOML file of options, keyed by long flag name (external-store = \"s3://b/p\"); flags given on the command line win")
	f.StringVarP(&cfg.Cold.URL, "external-store", "e", "", "cold tier: file:///DIR or s3://BUCKET/PREFIX; evicted objects are written there first and a Get restores them (credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the AWS credentials file, never flags)")
	f.StringVar(&cfg.Cold.Endpoint, "s3-endpoint", "", "S3 service of an s3:// cold tier, host:port or http(s)://host:port (default: AWS_ENDPOINT_URL, else AWS)")
	f.StringVar(&cfg.Cold.Region, "s3-region", "", "S3 region (default: AWS_REGION)")
	f.BoolVar(&cfg.Cold.NoTLS, "s3-no-tls", false, "talk plain HTTP to the S3 service (a test server on loopback)")
	cliutil.SizeVar(f, &cfg.Cold.PartSize, "s3-part-size", "part size of multipart uploads and of ranged reads from the cold tier")
	f.DurationVar(&cfg.ColdTimeout, "cold-timeout", cfg.ColdTimeout, "bound on each write to, read from or delete in the cold tier")
	f.BoolVar(&cfg.ColdShared, "cold-shared", false, "other stores write to the same cold tier (one bucket for a cluster): a Get of an object this store does not know looks for it there")
	f.BoolVar(&cfg.RestoreOnStart, "restore-on-start", false, "restore the cold tier's objects into memory at start, while they fit (default: on demand, at the first Get)")
	f.BoolVar(&cfg.NoPrefault, "no-prefault", false, "do not map the whole arena in the background after start (by default the store does, so that the first put into fresh memory runs at full speed; it costs one core for about 0.1 s per GiB)")
	f.BoolP("version", "V", false, "print the version and exit")
}
