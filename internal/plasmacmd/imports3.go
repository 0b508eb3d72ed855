package plasmacmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/internal/bridge"
	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/internal/coldtier"
	"github.com/plasmastream/plasmastream/internal/s3import"
	"github.com/plasmastream/plasmastream/store"
)

// importFlags are plasma import's flags.
type importFlags struct {
	s3       coldtier.Config
	nats     natsFlags
	announce string
	name     string
	// The bucket watch (import --watch s3://BUCKET/PREFIX).
	watch, newOnly, asJSON bool
	interval               time.Duration
	state                  string
}

// importS3 imports the S3 object at src, or with --watch every object
// under the prefix src, into the store of -s. With --announce the node
// in front of that store announces each one through its NATS bridge.
func (o *options) importS3(cmd *cobra.Command, f *importFlags, src string) error {
	u, err := url.Parse(src)
	if err != nil || u.Host == "" || (!f.watch && strings.Trim(u.Path, "/") == "") {
		if f.watch {
			return fmt.Errorf("%s: want s3://BUCKET/PREFIX", src)
		}
		return fmt.Errorf("%s: want s3://BUCKET/KEY (or --watch s3://BUCKET/PREFIX)", src)
	}
	if cmd.Flags().Changed("nats") && f.announce == "" {
		return errors.New("with an s3:// source, --nats serves only --announce: the objects are imported into the store of -s, on this machine (run plasma import beside the node that should hold them; other nodes get them by subscribing to the subject)")
	}
	if f.watch && f.interval <= 0 {
		return fmt.Errorf("--interval %s: want a positive duration (5s, 1m)", f.interval)
	}
	if f.watch && f.name != "" {
		return errors.New("--name names one blob: a watch announces each object under its key")
	}
	bucket, key := u.Host, strings.TrimPrefix(u.Path, "/")
	s3c, err := coldtier.NewS3Client(f.s3)
	if err != nil {
		return err
	}
	var an *announcer
	if f.announce != "" {
		if an, err = f.nats.announcer(f.announce, f.watch); err != nil {
			return err
		}
		defer an.nc.Close()
	}
	if f.watch {
		return o.watchBucket(cmd, f, s3c, an, bucket, key)
	}
	return o.withClient(func(ctx context.Context, c *store.Client) error {
		progress := cliutil.TerminalProgress()
		im, err := s3import.Import(ctx, c, s3c, bucket, key, progress)
		progress.Done()
		if err != nil {
			return fmt.Errorf("import %w", err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", im.ID, im.Hash)
		if an != nil {
			name := f.name
			if name == "" {
				name = key
			}
			if _, err := an.announce(im.Hash, name); err != nil {
				return fmt.Errorf("imported %s as %s, but %w", src, im.ID, err)
			}
		}
		return nil
	})
}

// watchBucket runs the bucket watch until SIGINT or SIGTERM.
func (o *options) watchBucket(cmd *cobra.Command, f *importFlags, s3c *minio.Client, an *announcer, bucket, prefix string) error {
	log, err := cliutil.NewLogger("info")
	if err != nil {
		return err
	}
	cfg := s3import.Config{Bucket: bucket, Prefix: prefix, Interval: f.interval, StatePath: f.state, NewOnly: f.newOnly,
		Log: log.With("component", "s3watch"), Progress: cliutil.TerminalProgress}
	if cfg.StatePath == "" {
		if cfg.StatePath, err = s3import.DefaultStatePath(s3c.EndpointURL().Host, bucket, prefix); err != nil {
			return err
		}
	}
	out := cmd.OutOrStdout()
	cfg.Imported = func(im s3import.Imported) {
		if f.asJSON {
			b, _ := json.Marshal(im)
			fmt.Fprintln(out, string(b))
			return
		}
		fmt.Fprintf(out, "%s %s %d\n", im.ID, im.Key, im.Size)
	}
	if an != nil {
		cfg.Announce = func(_ context.Context, im s3import.Imported) error {
			_, err := an.announce(im.Hash, im.Key)
			return err
		}
	}
	return o.withClient(func(ctx context.Context, c *store.Client) error {
		return s3import.Watch(ctx, cfg, c, s3c)
	})
}

// announcer asks a node's bridge to announce blobs of its store.
type announcer struct {
	n       *natsFlags
	nc      *nats.Conn
	subject string
}

// announcer connects to the NATS of n. For a watch (long-lived) the
// connection reconnects for ever, and a node must answer now, so that a
// wrong --nats or --node is an error at once rather than a warning per
// object.
func (n *natsFlags) announcer(subject string, longLived bool) (*announcer, error) {
	if err := bridge.CheckSubject(subject); err != nil {
		return nil, fmt.Errorf("--announce: %w", err)
	}
	opts := []nats.Option{nats.Name("plasma import"), nats.Timeout(5 * time.Second)}
	if longLived {
		opts = append(opts, nats.MaxReconnects(-1))
	}
	nc, err := nats.Connect(n.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", n.url, err)
	}
	a := &announcer{n: n, nc: nc, subject: subject}
	if longLived {
		var info struct {
			Node string `json:"node"`
		}
		if err := bridge.Request(nc, a.op("stat"), nil, n.timeout, &info); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return a, nil
}

func (a *announcer) op(op string) string {
	s := a.n.prefix + "." + op
	if a.n.node != "" {
		s += "." + a.n.node
	}
	return s
}

// announce has the node announce the blob hash, which its store holds.
func (a *announcer) announce(hash store.Digest, name string) (bridge.Announcement, error) {
	req, _ := json.Marshal(bridge.AnnounceRequest{Object: hash.String(), Subject: a.subject, Name: name})
	var ann bridge.Announcement
	err := bridge.Request(a.nc, a.op("announce"), req, a.n.timeout, &ann)
	if err != nil && a.n.node == "" && strings.Contains(err.Error(), "not in this node's store") {
		err = fmt.Errorf("%w (the node that answered does not hold it: give --node, the --node-name of the plasma-stream-server of this store)", err)
	}
	return ann, err
}
