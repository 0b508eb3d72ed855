package plasmacmd

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/s3import"
	"github.com/plasmastream/plasmastream/store"
)

func (o *options) importCmd() *cobra.Command {
	f := &importFlags{}
	cmd := &cobra.Command{
		Use:   "import FILE | s3://BUCKET/KEY | --watch s3://BUCKET/PREFIX",
		Short: "Store a file or an S3 object under its BLAKE3 content address (or watch a bucket and import what arrives)",
		Long: `Store a file, or an S3 object (s3://BUCKET/KEY), under its BLAKE3 content
address and print the id and the 64-hex hash. An S3 object is read straight
into the store's shared memory; the S3 service is AWS_ENDPOINT_URL (or
--s3-endpoint), the credentials AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or
the AWS credentials file. With --nats the node behind that NATS imports FILE
from its own machine (a NATS request on <prefix>.import: the path must exist
there), streaming it into its store; --announce also announces it on a
subject.

With --watch, list s3://BUCKET/PREFIX every --interval and import each object
that is new or whose ETag or size changed, printing "ID KEY SIZE" (or JSON)
for each, until SIGINT or SIGTERM. What was imported is kept in the --state
file, so a restarted watch imports only what changed; the first run imports
what the prefix holds already, unless --new-only. An object that fails is
logged and retried later; the watch ends (nonzero) only if the store is gone.
With --announce SUBJECT the node in front of the store of -s (--node, on the
NATS of --nats) announces each object it imported, named by its key.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, name := range []string{"interval", "state", "new-only", "json"} {
				if cmd.Flags().Changed(name) && !f.watch {
					return fmt.Errorf("--%s is a flag of the bucket watch: add --watch", name)
				}
			}
			if strings.HasPrefix(args[0], "s3://") {
				return o.importS3(cmd, f, args[0])
			}
			if f.watch {
				return fmt.Errorf("%s: --watch watches s3://BUCKET/PREFIX", args[0])
			}
			if cmd.Flags().Changed("nats") || f.announce != "" {
				return importRemote(cmd.OutOrStdout(), &f.nats, args[0], f.announce, f.name)
			}
			data, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			return o.withClient(func(ctx context.Context, c *store.Client) error {
				id, err := c.Put(ctx, data, nil)
				if err != nil {
					return err
				}
				sum := bao.Sum(data)
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", id, hex.EncodeToString(sum[:]))
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.s3.Endpoint, "s3-endpoint", "", "S3 service, host:port or http(s)://host:port (default: AWS_ENDPOINT_URL, else AWS)")
	fl.StringVar(&f.s3.Region, "s3-region", "", "S3 region (default: AWS_REGION)")
	fl.BoolVar(&f.s3.NoTLS, "s3-no-tls", false, "talk plain HTTP to the S3 service")
	f.nats.define(fl)
	fl.StringVar(&f.announce, "announce", "", "also announce the blob on this SUBJECT through the NATS bridge (a FILE: imported by the node; s3://: by the node of -s, see --node)")
	fl.StringVar(&f.name, "name", "", "with --announce: the blob's name (default: the file's base name, or the S3 key)")
	fl.BoolVar(&f.watch, "watch", false, "watch s3://BUCKET/PREFIX: import every new or changed object under it until interrupted")
	fl.DurationVar(&f.interval, "interval", s3import.DefaultInterval, "with --watch: time between two listings of the bucket")
	fl.StringVar(&f.state, "state", "", "with --watch: the file of what was imported (default: $XDG_STATE_HOME/plasma/s3watch/BUCKET-HASH.json, else under ~/.local/state)")
	fl.BoolVar(&f.newOnly, "new-only", false, "with --watch, on a first run (no state file): skip what the prefix holds already")
	fl.BoolVar(&f.asJSON, "json", false, "with --watch: print each imported object as one JSON object")
	return cmd
}

func (o *options) exportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export ID FILE",
		Short: "Write an object to FILE, verified against its BLAKE3 digest",
		Long: `Write an object's data to FILE (atomically: FILE appears only when
complete) after verifying it against the BLAKE3 digest the store keeps for it (as
get --verify does). A mismatch is an error and leaves no file.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := store.ParseObjectID(args[0])
			if err != nil {
				return err
			}
			return o.withClient(func(ctx context.Context, c *store.Client) error {
				obj, err := c.GetVerified(ctx, id, 0)
				if err != nil {
					return fmt.Errorf("%w; nothing written", err)
				}
				defer c.Release(ctx, id)
				return writeOutput(cmd, args[1], obj.Data)
			})
		},
	}
}
