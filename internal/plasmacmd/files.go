package plasmacmd

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/coldtier"
	"github.com/plasmastream/plasmastream/store"
)

func (o *options) importCmd() *cobra.Command {
	var s3cfg coldtier.Config
	var n natsFlags
	var announce, name string
	cmd := &cobra.Command{
		Use:   "import FILE | s3://BUCKET/KEY",
		Short: "Store a file or an S3 object under its BLAKE3 content address; print the id and the 64-hex hash",
		Long: `Store a file, or an S3 object (s3://BUCKET/KEY), under its BLAKE3 content
address and print the id and the 64-hex hash. An S3 object is read straight
into the store's shared memory; the S3 service is AWS_ENDPOINT_URL (or
--s3-endpoint), the credentials AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or
the AWS credentials file. With --nats the node behind that NATS imports FILE
from its own machine (a NATS request on <prefix>.import: the path must exist
there), streaming it into its store; --announce also announces it on a
subject.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("nats") || announce != "" {
				return importRemote(cmd.OutOrStdout(), &n, args[0], announce, name)
			}
			if strings.HasPrefix(args[0], "s3://") {
				return o.importS3(cmd, s3cfg, args[0])
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
	cmd.Flags().StringVar(&s3cfg.Endpoint, "s3-endpoint", "", "S3 service, host:port or http(s)://host:port (default: AWS_ENDPOINT_URL, else AWS)")
	cmd.Flags().StringVar(&s3cfg.Region, "s3-region", "", "S3 region (default: AWS_REGION)")
	cmd.Flags().BoolVar(&s3cfg.NoTLS, "s3-no-tls", false, "talk plain HTTP to the S3 service")
	n.define(cmd.Flags())
	cmd.Flags().StringVar(&announce, "announce", "", "with --nats: also announce the blob on this SUBJECT")
	cmd.Flags().StringVar(&name, "name", "", "with --announce: the blob's name (default: the file's base name)")
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
