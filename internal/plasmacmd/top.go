package plasmacmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/stream"
)

// plasma top: a live view of a node, or of every node of its cluster,
// drawn from STAT and ACTIVITY (and NODES with --cluster) every interval.

func (o *options) topCmd() *cobra.Command {
	var interval time.Duration
	var cluster bool
	var frames int
	cmd := &cobra.Command{
		Use:   "top [--cluster] [--interval D] [--frames N]",
		Short: "A live view of a node (or the cluster): objects, store usage, transfers and rates",
		Long: `Show, refreshed every --interval, the stream server at -a (with --cluster,
every node of its cluster): store usage and objects, connections, bytes per
second received and sent, the transfers under way with their progress, and
the most recent transfers and errors. q or Ctrl-C quits. With --frames N it
draws N frames and exits (without a terminal, each frame is printed after
the previous one).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < 100*time.Millisecond {
				return fmt.Errorf("--interval %v: at least 100ms", interval)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			t := &top{o: o, out: cmd.OutOrStdout(), cluster: cluster, prev: map[string]sample{}, conns: map[string]*stream.Client{}}
			defer t.close()
			if f, ok := cmd.InOrStdin().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				if state, err := term.MakeRaw(int(f.Fd())); err == nil {
					defer term.Restore(int(f.Fd()), state)
					t.raw = true
					go quitOnQ(f, stop)
				}
			}
			for n := 0; frames == 0 || n < frames; n++ {
				if n > 0 {
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(interval):
					}
				}
				if err := t.frame(ctx); err != nil && ctx.Err() == nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between frames")
	cmd.Flags().BoolVar(&cluster, "cluster", false, "show every node of the cluster of the server at -a")
	cmd.Flags().IntVar(&frames, "frames", 0, "draw this many frames, then exit (0: until q or Ctrl-C)")
	return cmd
}

// quitOnQ ends the view when q (or Ctrl-C, in raw mode) is typed.
func quitOnQ(f *os.File, stop func()) {
	b := make([]byte, 1)
	for {
		if _, err := f.Read(b); err != nil || b[0] == 'q' || b[0] == 'Q' || b[0] == 3 {
			stop()
			return
		}
	}
}

type sample struct {
	at               time.Time
	arriving, sentTo uint64
}

type top struct {
	o       *options
	out     io.Writer
	cluster bool
	raw     bool
	prev    map[string]sample
	conns   map[string]*stream.Client // by address
}

func (t *top) close() {
	for _, c := range t.conns {
		c.Close()
	}
}

// conn is a connection to the node at addr (key: its registered public
// key, to pin with --key when the node has one).
func (t *top) conn(ctx context.Context, addr, key string) (*stream.Client, error) {
	if c := t.conns[addr]; c != nil && c.Err() == nil {
		return c, nil
	}
	creds := t.o.creds
	if key != "" && creds.Key != "" {
		creds.ServerKey = key
	}
	opts, err := creds.Options()
	if err != nil {
		return nil, err
	}
	c, err := stream.Connect(ctx, addr, opts...)
	if err != nil {
		return nil, err
	}
	t.conns[addr] = c
	return c, nil
}

type nodeView struct {
	name, addr string
	stat       stream.ServerStat
	act        stream.Activity
	err        error
}

func (t *top) frame(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	first, err := t.conn(rctx, t.o.address, "")
	if err != nil {
		return err
	}
	targets := []stream.Node{{Address: t.o.address}}
	if t.cluster {
		if targets, err = first.Nodes(rctx); err != nil {
			return err
		}
	}
	var views []nodeView
	for _, n := range targets {
		v := nodeView{name: n.Name, addr: n.Address}
		c, err := t.conn(rctx, n.Address, n.Key)
		if err == nil {
			v.stat, err = c.Stat(rctx)
		}
		if err == nil {
			v.act, err = c.Activity(rctx)
		}
		if err != nil {
			v.err = err
			if c := t.conns[n.Address]; c != nil {
				c.Close()
				delete(t.conns, n.Address)
			}
		}
		if v.name == "" {
			v.name = v.stat.Node
		}
		views = append(views, v)
	}
	var b strings.Builder
	t.render(&b, views)
	text := b.String()
	if t.raw {
		// Raw mode: lines need \r, and the screen is redrawn in place.
		text = "\x1b[H\x1b[2J" + strings.ReplaceAll(text, "\n", "\r\n")
	}
	_, err = io.WriteString(t.out, text)
	return err
}

func (t *top) render(b *strings.Builder, views []nodeView) {
	fb := cliutil.FormatBytes
	fmt.Fprintf(b, "plasma top — %s — %s  (q quits)\n\n", t.o.address, time.Now().Format("15:04:05"))
	fmt.Fprintf(b, "%-14s %-22s %9s %21s %6s %12s %12s %6s\n", "NODE", "ADDRESS", "OBJECTS", "STORE USED", "CONNS", "RECEIVING", "SENDING", "XFERS")
	var active, recent []string
	for _, v := range views {
		if v.err != nil {
			fmt.Fprintf(b, "%-14s %-22s unreachable: %v\n", v.name, v.addr, v.err)
			continue
		}
		st := v.stat.Store
		now := sample{at: v.act.Time, arriving: uint64(v.act.Arriving), sentTo: v.act.BytesSent}
		rx, tx := "-", "-"
		if p, ok := t.prev[v.addr]; ok && now.at.After(p.at) {
			secs := now.at.Sub(p.at).Seconds()
			rx = fb(float64(now.arriving-min(now.arriving, p.arriving))/secs) + "/s"
			tx = fb(float64(now.sentTo-min(now.sentTo, p.sentTo))/secs) + "/s"
		}
		t.prev[v.addr] = now
		used := fmt.Sprintf("%s/%s %3.0f%%", fb(float64(st.Used)), fb(float64(st.Capacity)), 100*float64(st.Used)/float64(max(st.Capacity, 1)))
		fmt.Fprintf(b, "%-14s %-22s %9d %21s %6d %12s %12s %6d\n", v.name, v.addr, st.Objects, used, v.stat.Connections, rx, tx, len(v.act.Transfers.Active))
		for _, r := range v.act.Transfers.Active {
			progress := fb(float64(r.Bytes))
			if r.Total > 0 {
				progress = fmt.Sprintf("%s of %s %s", fb(float64(r.Bytes)), fb(float64(r.Total)), bar(float64(r.Bytes)/float64(r.Total), 20))
			}
			active = append(active, fmt.Sprintf("  %-10s %-12s %-22s %d/%d objects  %s  %.1fs", v.name, r.Kind, r.Peer, r.Done, r.Objects, progress, r.Duration))
		}
		for _, r := range v.act.Transfers.Recent {
			outcome := "ok"
			if r.Error != "" {
				outcome = "failed: " + r.Error
			} else if r.Failed > 0 {
				outcome = fmt.Sprintf("%d failed", r.Failed)
			}
			recent = append(recent, fmt.Sprintf("  %s %-10s %-12s %-22s %d objects, %s in %.2fs, %s", r.Start.Local().Format("15:04:05"), v.name, r.Kind, r.Peer, r.Objects, fb(float64(r.Bytes)), r.Duration, outcome))
		}
	}
	fmt.Fprintf(b, "\nTRANSFERS UNDER WAY (%d)\n", len(active))
	for _, l := range active {
		b.WriteString(l + "\n")
	}
	sort.Sort(sort.Reverse(sort.StringSlice(recent)))
	fmt.Fprintf(b, "\nRECENT TRANSFERS\n")
	for i, l := range recent {
		if i == 8 {
			break
		}
		b.WriteString(l + "\n")
	}
}

// bar draws a fraction as [#####.....].
func bar(f float64, width int) string {
	n := int(min(max(f, 0), 1) * float64(width))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}
