package plasmacmd

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

type options struct {
	socket      string
	socketOwner string             // --socket-owner: a user trusted to own the socket
	address     string             // the local stream server, for cluster operations
	creds       stream.Credentials // --key/--server-key or --tls-*: mutual TLS with the stream server
}

// New returns the root command.
func New() *cobra.Command {
	o := &options{}
	root := &cobra.Command{
		Use:           "plasma",
		Short:         "Put, get and inspect objects in a Plasma store",
		Version:       cliutil.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&o.socket, "socket", "s", store.DefaultSocket, "unix socket of the plasma-store-server")
	root.PersistentFlags().StringVar(&o.socketOwner, "socket-owner", "", "also trust a store socket owned by this USER or UID (by default only one owned by you or root is used)")
	root.PersistentFlags().StringVarP(&o.address, "address", "a", stream.DefaultAddr, "the local plasma-stream-server, for cluster operations")
	cliutil.CredentialFlags(root.PersistentFlags(), &o.creds)
	root.Flags().BoolP("version", "V", false, "print the version and exit")
	root.SetVersionTemplate("plasma {{.Version}}\n")
	root.AddCommand(o.putCmd(), o.getCmd(), o.lsCmd(), o.rmCmd(), o.evictCmd(), o.persistCmd(), o.watchCmd(), o.statCmd(), o.benchCmd(), o.nodesCmd(), o.locateCmd(), o.pullCmd(), o.importCmd(), o.exportCmd(), o.keygenCmd(), o.keyCmd(), o.caCmd(), o.stateCmd(), o.dashboardCmd(), o.topCmd(), o.announceCmd(), o.replicationCmd())
	return root
}

// context ends on SIGINT or SIGTERM, so every command stops cleanly.
func (o *options) context() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

// withClient runs f with a connected client and a context that ends on
// SIGINT or SIGTERM.
func (o *options) withClient(f func(context.Context, *store.Client) error) error {
	ctx, cancel := o.context()
	defer cancel()
	c, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(ctx, c)
}

func (o *options) connect(ctx context.Context) (*store.Client, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	opts, err := o.connectOptions()
	if err != nil {
		return nil, err
	}
	return store.Connect(cctx, o.socket, opts...)
}

// connectOptions are the store connection's options from the flags.
func (o *options) connectOptions() ([]store.ConnectOption, error) {
	if o.socketOwner == "" {
		return nil, nil
	}
	uid, err := store.LookupUser(o.socketOwner)
	if err != nil {
		return nil, fmt.Errorf("--socket-owner: %w", err)
	}
	return []store.ConnectOption{store.WithSocketOwner(uid)}, nil
}
