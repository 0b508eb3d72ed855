package plasmacmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/plasmastream/plasmastream/internal/bench"
	"github.com/plasmastream/plasmastream/internal/bridge"
	"github.com/plasmastream/plasmastream/internal/cliutil"
)

// natsFlags reach a node's NATS bridge (docs/nats-bridge.md).
type natsFlags struct {
	url, prefix, node string
	timeout           time.Duration
}

func (n *natsFlags) define(f *pflag.FlagSet) {
	f.StringVar(&n.url, "nats", "nats://127.0.0.1:4222", "the NATS of the node's bridge (plasma-stream-server --nats)")
	f.StringVar(&n.prefix, "nats-prefix", bridge.DefaultPrefix, "the bridge's subject prefix (plasma-stream-server --nats-prefix)")
	f.StringVar(&n.node, "node", "", "ask this node (by --node-name); default: any node on the NATS")
	f.DurationVar(&n.timeout, "timeout", time.Minute, "how long to wait for the reply")
}

// request sends payload to <prefix>.<op>[.<node>] and decodes the JSON
// reply into v; an {"error": ...} reply is returned as the error.
func (n *natsFlags) request(op string, payload []byte, v any) error {
	nc, err := nats.Connect(n.url, nats.Name("plasma"), nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", n.url, err)
	}
	defer nc.Close()
	subject := n.prefix + "." + op
	if n.node != "" {
		subject += "." + n.node
	}
	return bridge.Request(nc, subject, payload, n.timeout, v)
}

// importRemote imports path on the node's machine through its bridge.
func importRemote(w io.Writer, n *natsFlags, path, announce, name string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	req, _ := json.Marshal(bridge.ImportRequest{Path: abs, Announce: announce, Name: name})
	var im bridge.Imported
	if err := n.request("import", req, &im); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s %s\n", im.ID, im.Hash)
	return nil
}

func (o *options) announceCmd() *cobra.Command {
	var n natsFlags
	var name string
	cmd := &cobra.Command{
		Use:   "announce ID|HASH SUBJECT",
		Short: "Announce a blob of a node's store on <prefix>.blobs.SUBJECT, for the nodes subscribed to replicate it",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, _ := json.Marshal(bridge.AnnounceRequest{Object: args[0], Subject: args[1], Name: name})
			var a bridge.Announcement
			if err := n.request("announce", req, &a); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "announced %s (%s, %d bytes) on %s.blobs.%s from %s\n", a.Hash, a.ID(), a.Size, n.prefix, a.Subject, a.Node)
			return nil
		},
	}
	n.define(cmd.Flags())
	cmd.Flags().StringVar(&name, "name", "", "the blob's name in the announcement")
	return cmd
}

func (o *options) replicationCmd() *cobra.Command {
	var n natsFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "replication [SUBJECT-PATTERN]",
		Short: "Show a node's replication by subject: each blob, who holds it, what is in flight, what failed and why",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var filter []byte
			if len(args) == 1 {
				filter = []byte(args[0])
			}
			var r bridge.Replication
			if err := n.request("replication", filter, &r); err != nil {
				return err
			}
			if asJSON {
				b, _ := json.Marshal(r)
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return nil
			}
			printReplication(cmd.OutOrStdout(), &r)
			return nil
		},
	}
	n.define(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	return cmd
}

func printReplication(w io.Writer, r *bridge.Replication) {
	subs := strings.Join(r.Subscriptions, " ")
	if subs == "" {
		subs = "nothing (subscribe.subjects)"
	}
	fmt.Fprintf(w, "node %s, subscribed to: %s\n", r.Node, subs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tID\tSIZE\tNAME\tSTATE\tPROGRESS\tHOLDERS\tERROR")
	for _, s := range r.Subjects {
		for _, b := range s.Blobs {
			var holders []string
			for _, h := range b.Holders {
				holders = append(holders, h.Node)
			}
			progress := "-"
			switch {
			case b.State == bridge.StateFetching:
				progress = cliutil.FormatSize(b.Bytes)
			case b.Resumed > 0:
				progress = "resumed at " + cliutil.FormatSize(b.Resumed)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s (%d)\t%s\t%s\t%s\n", s.Subject, b.ID, cliutil.FormatSize(b.Size), b.Name, b.State, b.Attempts,
				progress, strings.Join(holders, ","), b.Error)
		}
	}
	tw.Flush()
}

func (o *options) benchBridgeCmd() *cobra.Command {
	var cfg bench.BridgeConfig
	cfg.SetDefaults()
	cmd := &cobra.Command{
		Use:   "bridge",
		Short: "Benchmark the NATS bridge: replication by announcement, and import by request",
		Long: `Start three nodes on loopback (binaries beside this program or on PATH),
the first with an embedded NATS, the other two subscribed to bench.>. Each
round puts a new blob on the first node, times one SYNC COPY of it to the
second, then announces it and times until both subscribers have replicated it
(replicate_ratio: replication time over the copy's, medians). Then times the
import by NATS request of a file of the same size against cp of the file to
/dev/shm (import_GBps, cp_shm_GBps), and the CPU the stream servers spent.
Prints a table and, as its last line, JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.runBench(cmd, func(ctx context.Context, w io.Writer) (any, error) { return bench.Bridge(ctx, cfg, w) })
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Size, "size", cfg.Size, "bytes of the blob and of the imported file")
	f.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "timed repetitions")
	f.StringVar(&cfg.BinDir, "bin", cfg.BinDir, "directory of plasma-store-server and plasma-stream-server (default: beside this program, then PATH)")
	return cmd
}
