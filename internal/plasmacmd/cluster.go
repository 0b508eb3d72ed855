package plasmacmd

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// withStream runs f with a client of the local stream server.
func (o *options) withStream(f func(context.Context, *stream.Client) error) error {
	ctx, cancel := o.context()
	defer cancel()
	c, err := o.streamConnect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(ctx, c)
}

// streamConnect connects to the stream server at -a, with --key if given.
func (o *options) streamConnect(ctx context.Context) (*stream.Client, error) {
	keyOpts, err := o.creds.Options()
	if err != nil {
		return nil, err
	}
	return stream.Connect(ctx, o.address, keyOpts...)
}

// fetch asks the local stream server to pull id from the cluster into the
// local store, then gets it there. Without a reachable, clustered stream
// server it reports the local miss (errNoCluster wraps it).
func (o *options) fetch(ctx context.Context, c *store.Client, id store.ObjectID, miss error) (*store.Object, error) {
	keyOpts, err := o.creds.Options()
	if err != nil {
		return nil, err
	}
	sc, err := stream.Connect(ctx, o.address, keyOpts...)
	if err != nil {
		return nil, miss
	}
	defer sc.Close()
	bar := cliutil.TerminalProgress()
	_, err = sc.FetchProgress(ctx, []stream.ObjectID{id}, func(p stream.Progress) {
		bar.Update(int64(p.Bytes), int64(p.BytesAnnounced), "fetching "+id.String()[:8]+" from the cluster")
	})
	bar.Done()
	if err != nil {
		if stream.IsStatus(err, stream.StatusNotClustered) {
			return nil, miss
		}
		return nil, fmt.Errorf("%w, nor could it be fetched from the cluster: %v", miss, err)
	}
	obj, err := c.GetOne(ctx, id, 10*time.Second)
	if errors.Is(err, store.ErrObjectNotFound) {
		return nil, fmt.Errorf("object %s was fetched from the cluster but is gone from the local store again (evicted?)", id)
	}
	return obj, err
}

func (o *options) nodesCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "nodes [--json]",
		Short: "List the nodes of the cluster (through the stream server at -a)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withStream(func(ctx context.Context, c *stream.Client) error {
				nodes, err := c.Nodes(ctx)
				if err != nil {
					return err
				}
				sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
				if asJSON {
					if nodes == nil {
						nodes = []stream.Node{}
					}
					return printJSON(cmd.OutOrStdout(), nodes)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tADDRESS\tGROUPS\tVERSION\tSTARTED")
				for _, n := range nodes {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, n.Address, strings.Join(n.Groups, ","), n.Version, n.Started.Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (o *options) locateCmd() *cobra.Command {
	var asJSON, cold bool
	cmd := &cobra.Command{
		Use:   "locate ID [--json [--cold]]",
		Short: "List the nodes that hold an object, and the cold tiers that hold a copy, according to the cluster directory",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cold && !asJSON {
				return fmt.Errorf("--cold goes with --json: the text output always lists the cold copies")
			}
			id, err := store.ParseObjectID(args[0])
			if err != nil {
				return err
			}
			return o.withStream(func(ctx context.Context, c *stream.Client) error {
				locs, err := c.LocateAll(ctx, id)
				if err != nil {
					return err
				}
				p := locs[id]
				holders := p.Holders
				sort.Slice(holders, func(i, j int) bool { return holders[i].Node < holders[j].Node })
				if holders == nil {
					holders = []stream.Location{}
				}
				if p.Cold == nil {
					p.Cold = []stream.ColdCopy{}
				}
				switch {
				case asJSON && cold:
					return printJSON(cmd.OutOrStdout(), stream.Placement{Holders: holders, Cold: p.Cold})
				case asJSON:
					return printJSON(cmd.OutOrStdout(), holders)
				}
				if len(holders) == 0 && len(p.Cold) == 0 {
					return fmt.Errorf("no node of the cluster holds object %s, and no cold tier is recorded for it", id)
				}
				for _, h := range holders {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", h.Node, h.Address)
				}
				for _, c := range p.Cold {
					fmt.Fprintf(cmd.OutOrStdout(), "cold: %s (written by %s)\n", c.Where(), c.Node)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: an array of {node, address, size, digest}")
	cmd.Flags().BoolVar(&cold, "cold", false, "with --json: print {holders: [...], cold: [{tier, host, size, digest, node, written}]}")
	return cmd
}

// prefetch spreads a just-put object to a group and reports the outcome.
func (o *options) prefetch(cmd *cobra.Command, id store.ObjectID, group string, wait bool) error {
	return o.withStream(func(ctx context.Context, c *stream.Client) error {
		out, err := c.Prefetch(ctx, id, group, wait, 0)
		if wait {
			printOutcomes(cmd, out)
		}
		return err
	})
}

// deleteCluster deletes objects on every node holding them.
func (o *options) deleteCluster(cmd *cobra.Command, ids []store.ObjectID) error {
	return o.withStream(func(ctx context.Context, c *stream.Client) error {
		out, err := c.DeleteCluster(ctx, ids...)
		printOutcomes(cmd, out)
		return err
	})
}

// printOutcomes writes one line per node to stderr (stdout stays for ids).
func printOutcomes(cmd *cobra.Command, out []stream.NodeOutcome) {
	tw := tabwriter.NewWriter(cmd.ErrOrStderr(), 0, 4, 2, ' ', 0)
	for _, n := range out {
		line := fmt.Sprintf("%s\t%s\t%s", n.Node, n.Status, n.Duration.Round(time.Millisecond))
		if n.Source != "" {
			line += "\tfrom " + n.Source
		}
		if n.Message != "" {
			line += "\t" + n.Message
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

func (o *options) pullCmd() *cobra.Command {
	var from []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "pull ID --from [NAME=]HOST:PORT... [--json]",
		Short: "Have the stream server at -a fetch an object from other nodes, verified, from all of them at once",
		Long: `Ask the stream server at -a to fetch an object into its store as verified
ranges from every node given with --from at once (no cluster needed): each
16 KiB group is checked against the object's BLAKE3 bao outboard as it
lands, a node that sends a corrupt group is dropped and the others take over
its ranges, and a broken transfer resumes where it stopped. Prints what each
node sent.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := store.ParseObjectID(args[0])
			if err != nil {
				return err
			}
			if len(from) == 0 {
				return errors.New("pull needs at least one --from node")
			}
			var sources []stream.PullSource
			for _, f := range from {
				name, addr, ok := strings.Cut(f, "=")
				if !ok {
					name, addr = f, f
				}
				sources = append(sources, stream.PullSource{Node: name, Addr: addr, Full: true})
			}
			return o.withStream(func(ctx context.Context, c *stream.Client) error {
				bar := cliutil.TerminalProgress()
				out, err := c.PullProgress(ctx, id, sources, 0, 1, func(p stream.Progress) {
					bar.Update(int64(p.Bytes), int64(p.BytesAnnounced), fmt.Sprintf("pulling from %d nodes", len(sources)))
				})
				bar.Done()
				if asJSON {
					if jerr := printJSON(cmd.OutOrStdout(), out); jerr != nil {
						return jerr
					}
					return err
				}
				if err != nil {
					return err // its message names every node that failed, and why
				}
				for _, s := range out.Sources {
					line := fmt.Sprintf("  %s (%s): %s", s.Node, s.Address, cliutil.FormatBytes(float64(s.Bytes)))
					if s.Failed != "" {
						line += ", dropped: " + s.Failed
					}
					fmt.Fprintln(cmd.ErrOrStderr(), line)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s, %s in %s", out.Status, id, cliutil.FormatBytes(float64(out.Bytes)), out.Duration.Round(time.Millisecond))
				if out.Resumed > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), " (%s resumed from an earlier attempt)", cliutil.FormatBytes(float64(out.Resumed)))
				}
				fmt.Fprintln(cmd.OutOrStdout())
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&from, "from", nil, "a node holding the object, [NAME=]HOST:PORT of its stream server (repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the outcome as JSON: status, bytes, resumed, and per source node, address, bytes, failed")
	return cmd
}
