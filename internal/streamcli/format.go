package streamcli

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// formatBytes writes a byte count with binary units and three significant
// digits: "512 B", "12.0 MiB", "1.50 GiB".
func formatBytes(n float64) string { return cliutil.FormatBytes(n) }

// formatRate is bytes per second over d: "292 MiB/s".
func formatRate(bytes uint64, d time.Duration) string {
	if d <= 0 || bytes == 0 {
		return "0 B/s"
	}
	return formatBytes(float64(bytes)/d.Seconds()) + "/s"
}

// formatDuration rounds d to three significant digits: "123µs", "41.2ms",
// "1.23s".
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d < 1000 {
		return d.String()
	}
	unit := time.Duration(math.Pow10(int(math.Floor(math.Log10(float64(d)))) - 2))
	if unit > time.Second {
		unit = time.Second
	}
	return d.Round(unit).String()
}

// objects is "1 object" or "n objects".
func objects(n int) string {
	if n == 1 {
		return "1 object"
	}
	return fmt.Sprintf("%d objects", n)
}

// syncOutcome counts what became of the objects of a SYNC.
type syncOutcome struct {
	total, copied, taken, present, keptAtSource int
	hasCopy, hasTake                            bool
	failed                                      []failure
}

type failure struct {
	id     stream.ObjectID
	peer   string
	status stream.Status
	msg    string // the client's message: names the object, the peer and the cause
}

func outcome(reqs []stream.PeerRequest, res *stream.SyncResult) syncOutcome {
	var o syncOutcome
	for _, r := range reqs {
		o.total += len(r.Objects)
		o.hasCopy = o.hasCopy || r.Kind == stream.Copy
		o.hasTake = o.hasTake || r.Kind == stream.Take
	}
	if res == nil {
		return o
	}
	for _, p := range res.Peers {
		for _, obj := range p.Objects {
			switch {
			case obj.Status == stream.StatusAlreadyPresent:
				o.present++
			case obj.Status == stream.StatusOK && p.Kind == stream.Take:
				o.taken++
				if !obj.DeletedAtSource {
					o.keptAtSource++
				}
			case obj.Status == stream.StatusOK:
				o.copied++
			default:
				o.failed = append(o.failed, failure{id: obj.ID, peer: p.From, status: obj.Status, msg: obj.Message})
			}
		}
	}
	return o
}

// writeSync writes the summary line of a SYNC (and of COPY and TAKE, which
// are single-peer SYNCs) and, after a failure line, one line per failed
// object. It reports whether the command succeeded.
func writeSync(w io.Writer, reqs []stream.PeerRequest, res *stream.SyncResult, err error, elapsed time.Duration) bool {
	o := outcome(reqs, res)
	done := o.copied + o.taken + o.present
	if res != nil && len(res.Peers) > 0 && done < o.total {
		// Every object of every peer request is reported; were one
		// missing, it still did not arrive.
		nf := o.total - done
		first := ""
		if len(o.failed) > 0 {
			first = o.failed[0].msg
			if first == "" {
				first = fmt.Sprintf("object %s from %s: %s", o.failed[0].id, o.failed[0].peer, o.failed[0].status)
			}
		} else if err != nil {
			first = err.Error()
		} else {
			first = res.Message
		}
		fmt.Fprintf(w, "error: %d of %s failed: %s\n", nf, objects(o.total), first)
		for _, f := range o.failed {
			fmt.Fprintf(w, "  %s %s: %s\n", f.id, f.status, reason(f))
		}
		return false
	}
	if err != nil {
		fmt.Fprintf(w, "error: %s\n", oneLine(err.Error()))
		return false
	}
	if res == nil || res.Status != stream.StatusOK {
		msg := "the server reported a failure"
		if res != nil && res.Message != "" {
			msg = res.Message
		}
		fmt.Fprintf(w, "error: %s\n", msg)
		return false
	}
	var parts []string
	if o.hasCopy {
		parts = append(parts, fmt.Sprintf("%d copied", o.copied))
	}
	if o.hasTake {
		parts = append(parts, fmt.Sprintf("%d taken", o.taken))
	}
	parts = append(parts, fmt.Sprintf("%d already present", o.present))
	detail := strings.Join(parts, ", ")
	if o.keptAtSource > 0 {
		detail += fmt.Sprintf("; %d not deleted at the source", o.keptAtSource)
	}
	fmt.Fprintf(w, "ok: %s (%s), %s in %s, %s\n", objects(done), detail,
		formatBytes(float64(res.Bytes)), formatDuration(elapsed), formatRate(res.Bytes, elapsed))
	return true
}

// reason is the cause of one failure without what its line already says
// (the id and the status): "from <peer>", then any detail.
func reason(f failure) string {
	msg := f.msg
	msg = strings.TrimPrefix(msg, "object "+f.id.String()+" from "+f.peer+": ")
	msg = strings.TrimPrefix(msg, "peer "+f.peer+": ")
	if st := f.status.String(); msg == st {
		msg = ""
	} else {
		msg = strings.TrimPrefix(msg, st+": ")
	}
	if msg == "" {
		return "from " + f.peer
	}
	return "from " + f.peer + ": " + oneLine(msg)
}

// oneLine keeps a message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func writePing(w io.Writer, node string, rtt time.Duration, st stream.StoreState) {
	if !st.Up {
		fmt.Fprintf(w, "error: pong from %s in %s, but %s\n", node, formatDuration(rtt), storeDown(st))
		return
	}
	fmt.Fprintf(w, "ok: pong from %s in %s, store up for %s\n", node, formatDuration(rtt), time.Since(st.Since).Round(time.Second))
}

// storeDown says since when a server's store has been unavailable.
func storeDown(st stream.StoreState) string {
	return fmt.Sprintf("its store is unavailable since %s (for %s); the server is reconnecting",
		st.Since.Format(time.RFC3339), time.Since(st.Since).Round(time.Second))
}

func writeStat(w io.Writer, s stream.ServerStat) {
	pct := 0.0
	if s.Store.Capacity > 0 {
		pct = 100 * float64(s.Store.Used) / float64(s.Store.Capacity)
	}
	conns := fmt.Sprintf("%d connections", s.Connections)
	if s.Connections == 1 {
		conns = "1 connection"
	}
	if !s.StoreState.Up {
		fmt.Fprintf(w, "error: node %s (version %s, up %s, %s), but %s\n",
			s.Node, s.Version, s.Uptime.Round(time.Second), conns, storeDown(s.StoreState))
		return
	}
	fmt.Fprintf(w, "ok: node %s (version %s, up %s, %s), store up for %s, %s of %s used (%.1f%%), %s (%d sealed)\n",
		s.Node, s.Version, s.Uptime.Round(time.Second), conns, time.Since(s.StoreState.Since).Round(time.Second),
		formatBytes(float64(s.Store.Used)), formatBytes(float64(s.Store.Capacity)), pct,
		objects(int(s.Store.Objects)), s.Store.Sealed)
}

func writeList(w io.Writer, infos []store.ObjectInfo) {
	var total uint64
	for _, in := range infos {
		total += in.DataSize + uint64(in.MetadataSize)
	}
	fmt.Fprintf(w, "ok: %s, %s\n", objects(len(infos)), formatBytes(float64(total)))
	for _, in := range infos {
		extra := ""
		if in.DeletePending {
			extra = ", delete pending"
		}
		fmt.Fprintf(w, "  %s %s, %d B data, %d B metadata%s\n", in.ID, in.State, in.DataSize, in.MetadataSize, extra)
	}
}
