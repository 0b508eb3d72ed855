package plasmacmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/store"
)

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (o *options) lsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls [--json]",
		Short: "List the objects in the store",
		Long: `List the objects in the store, sealed and being created.

--json prints an array of objects with id, data_size, metadata_size,
ref_count, state (created/sealed/cold), cold (a copy is in the cold tier),
create_time (RFC 3339),
construct_duration (nanoseconds; -1 while unsealed), creator_pid,
delete_pending, last_use, offset and digest (when known).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withClient(func(ctx context.Context, c *store.Client) error {
				infos, err := c.List(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					if infos == nil {
						infos = []store.ObjectInfo{}
					}
					return printJSON(cmd.OutOrStdout(), infos)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSTATE\tDATA\tMETA\tREFS\tCREATED\tCONSTRUCT\tPID")
				for _, in := range infos {
					state := string(in.State)
					if in.Cold && in.State == store.StateSealed {
						state += "+cold" // in memory, with a copy in the cold tier
					}
					if in.DeletePending {
						state += " (deleting)"
					}
					construct := "-"
					if in.ConstructDuration >= 0 {
						construct = in.ConstructDuration.Round(time.Microsecond).String()
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%d\n", in.ID, state,
						humanize.IBytes(in.DataSize), in.MetadataSize, in.RefCount,
						in.CreateTime.Format("2006-01-02 15:04:05"), construct, in.CreatorPID)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (o *options) statCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stat [--json]",
		Short: "Show the store's capacity, usage and counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withClient(func(ctx context.Context, c *store.Client) error {
				st, err := c.Stats(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), st)
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "socket:        %s\n", o.socket)
				fmt.Fprintf(w, "capacity:      %s (%d bytes)\n", humanize.IBytes(st.Capacity), st.Capacity)
				fmt.Fprintf(w, "used:          %s (%.1f%%), %s pinned by clients\n", humanize.IBytes(st.Used),
					100*float64(st.Used)/float64(max(st.Capacity, 1)), humanize.IBytes(st.Pinned))
				fmt.Fprintf(w, "objects:       %d (%d sealed)\n", st.Objects, st.Sealed)
				fmt.Fprintf(w, "largest free:  %s in %d free blocks\n", humanize.IBytes(st.LargestFree), st.FreeBlocks)
				fmt.Fprintf(w, "evictions:     %d (%s)\n", st.Evictions, humanize.IBytes(st.EvictedBytes))
				fmt.Fprintf(w, "compactions:   %d (%s moved)\n", st.Compactions, humanize.IBytes(st.MovedBytes))
				fmt.Fprintf(w, "clients:       %d\n", st.Clients)
				return printCold(ctx, w, c)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printCold adds what the store's cold tier holds, when it has one.
func printCold(ctx context.Context, w io.Writer, c *store.Client) error {
	infos, err := c.List(ctx)
	if err != nil {
		return err
	}
	var n, onlyN int
	var bytes, onlyBytes uint64
	for _, in := range infos {
		if in.Cold {
			n, bytes = n+1, bytes+in.DataSize
		}
		if in.State == store.StateCold {
			onlyN, onlyBytes = onlyN+1, onlyBytes+in.DataSize
		}
	}
	if n > 0 {
		fmt.Fprintf(w, "cold tier:     %d objects (%s), %d of them (%s) only there\n", n, humanize.IBytes(bytes), onlyN, humanize.IBytes(onlyBytes))
	}
	return nil
}

func (o *options) watchCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "watch [--json]",
		Short: "Print one line per seal, delete and eviction until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := o.context()
			defer cancel()
			opts, err := o.connectOptions()
			if err != nil {
				return err
			}
			sub, err := store.Subscribe(ctx, o.socket, store.SubscribeConnecting(opts...))
			if err != nil {
				return err
			}
			defer sub.Close()
			w := cmd.OutOrStdout()
			enc := json.NewEncoder(w)
			for {
				select {
				case <-ctx.Done():
					return nil
				case ev, ok := <-sub.Events():
					if !ok {
						return fmt.Errorf("subscription to %s ended: %w", o.socket, sub.Err())
					}
					if asJSON {
						enc.Encode(ev)
					} else {
						fmt.Fprintf(w, "%s %-7s %s data=%d metadata=%d\n", ev.Time.Format(time.RFC3339Nano),
							ev.Kind, ev.ID, ev.DataSize, ev.MetadataSize)
					}
				}
			}
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return cmd
}
