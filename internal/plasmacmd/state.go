package plasmacmd

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/streaming"
)

func (o *options) stateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Read the state streams of stream servers (their blocks of changes)",
	}
	cmd.AddCommand(o.stateReadCmd())
	return cmd
}

func (o *options) stateReadCmd() *cobra.Command {
	var (
		from            uint64
		follow, asJSON  bool
		prefix, node    string
		stream, subject string
	)
	cmd := &cobra.Command{
		Use:   "read DIR|nats://HOST:PORT[,...]",
		Short: "Print the blocks a file streamer wrote to DIR, or a NATS streamer published, in order",
		Long: `Print the state blocks of a stream server, in block order: from a file
streamer's write_dir, or from a NATS JetStream stream (nats://...).
Each block prints its meta record, then one line per change. With
--follow it waits for new blocks until interrupted. With --json each
block is one JSON object per line.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := o.context()
			defer cancel()
			var src streaming.BlockSource
			if strings.HasPrefix(args[0], "nats://") || strings.HasPrefix(args[0], "tls://") {
				r, err := streaming.OpenNATS(ctx, args[0], streaming.NATSReaderConfig{Stream: stream, Prefix: subject, Node: node})
				if err != nil {
					return err
				}
				defer r.Close()
				src = r
			} else {
				r, err := streaming.OpenDir(args[0], prefix)
				if err != nil {
					return err
				}
				src = r
			}
			w := cmd.OutOrStdout()
			return src.ReadFrom(ctx, from, follow, func(b *streaming.ReadBlock) error {
				if asJSON {
					return printBlockJSON(w, b)
				}
				return printBlock(w, b)
			})
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&from, "from", 0, "start at this block number")
	f.BoolVar(&follow, "follow", false, "wait for new blocks until interrupted")
	f.BoolVar(&asJSON, "json", false, "one JSON object per block")
	f.StringVar(&prefix, "prefix", "", "file name prefix of the blocks in DIR (default: the one prefix DIR holds)")
	f.StringVar(&stream, "stream", streaming.DefaultNATSStream, "NATS: the JetStream stream")
	f.StringVar(&subject, "subject-prefix", streaming.DefaultNATSPrefix, "NATS: the subject prefix")
	f.StringVar(&node, "node", "", "NATS: the node whose blocks to read (default: the one node the stream holds)")
	return cmd
}

type blockJSON struct {
	Block    uint64               `json:"block"`
	Node     string               `json:"node,omitempty"`
	Time     string               `json:"time,omitempty"`
	Start    bool                 `json:"start,omitempty"`
	Snapshot bool                 `json:"snapshot,omitempty"`
	Lost     uint64               `json:"lost_before,omitempty"`
	Pairs    []streaming.PairView `json:"pairs"`
}

func blockView(b *streaming.ReadBlock) blockJSON {
	v := blockJSON{Block: b.Number, Pairs: make([]streaming.PairView, len(b.Pairs))}
	if m := b.Meta; m != nil {
		v.Node, v.Time, v.Start, v.Snapshot, v.Lost = m.Node, m.Time.UTC().Format(time.RFC3339Nano), m.Start, m.Snapshot, m.Lost()
	}
	for i, p := range b.Pairs {
		v.Pairs[i] = streaming.View(p)
	}
	return v
}

func printBlockJSON(w io.Writer, b *streaming.ReadBlock) error {
	line, err := json.Marshal(blockView(b))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", line)
	return err
}

func printBlock(w io.Writer, b *streaming.ReadBlock) error {
	v := blockView(b)
	var flags []string
	for _, f := range []struct {
		on   bool
		name string
	}{{v.Start, "start"}, {v.Snapshot, "snapshot"}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	if v.Lost > 0 {
		flags = append(flags, fmt.Sprintf("%d blocks lost before it", v.Lost))
	}
	if _, err := fmt.Fprintf(w, "block %d node=%s time=%s changes=%d %s\n", v.Block, v.Node, v.Time, len(v.Pairs), strings.Join(flags, " ")); err != nil {
		return err
	}
	for _, p := range v.Pairs {
		op := "set"
		if p.Delete {
			op = "delete"
		}
		val, _ := json.Marshal(p.Value)
		if _, err := fmt.Fprintf(w, "  %s %s %s %s\n", p.Store, op, p.Key, val); err != nil {
			return err
		}
	}
	return nil
}
