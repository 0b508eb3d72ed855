package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/natsconn"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/streaming"
)

// StateConfig configures the state streaming benchmark.
type StateConfig struct {
	Changes int    // changes pushed through each streamer
	Creates int    // 1 KiB objects created and sealed per round, per node
	Rounds  int    // alternating rounds of the put ratio
	BinDir  string // where the binaries are ("": beside this program, else PATH)
}

// SetDefaults fills the zero fields.
func (c *StateConfig) SetDefaults() {
	if c.Changes == 0 {
		c.Changes = 200_000
	}
	if c.Creates == 0 {
		c.Creates = 20_000
	}
	if c.Rounds == 0 {
		c.Rounds = 5
	}
}

// Validate reports the first bad value.
func (c *StateConfig) Validate() error {
	return notNegative(map[string]int{"--changes": c.Changes, "--creates": c.Creates, "--rounds": c.Rounds})
}

// State measures state streaming: changes/s through the file streamer
// (fsync on and off) and the NATS streamer (embedded JetStream), each
// driven in process; then streaming_put_ratio, the create+seal rate of a
// store whose stream server runs every streamer over that of one whose
// stream server runs none, rounds alternating between the two nodes.
func State(ctx context.Context, cfg StateConfig, w io.Writer) (map[string]any, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "psbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	res := map[string]any{"changes": cfg.Changes, "creates": cfg.Creates}
	for _, fsync := range []bool{true, false} {
		wd := filepath.Join(dir, "files-"+strconv.FormatBool(fsync))
		svc, err := streaming.NewFileStreamingService(streaming.Options{streaming.OptStreamersFileWriteDir: wd,
			streaming.OptStreamersFileFsync: fsync}, nil, streaming.Env{Node: "bench"})
		if err != nil {
			return nil, err
		}
		rate, err := changeRate(svc, cfg.Changes)
		if err != nil {
			return nil, err
		}
		res["file_fsync_"+map[bool]string{true: "on", false: "off"}[fsync]+"_changes_per_s"] = int(rate)
	}
	nc, err := natsconn.Connect(ctx, natsconn.Config{Servers: natsconn.Embedded, Listen: "127.0.0.1:0", Dir: filepath.Join(dir, "nats"), Name: "bench"})
	if err != nil {
		return nil, err
	}
	svc, err := streaming.NewNATSStreamingService(streaming.Options{}, nil, streaming.Env{Node: "bench", NATS: nc.NC})
	if err == nil {
		var rate float64
		if rate, err = changeRate(svc, cfg.Changes); err == nil {
			res["nats_changes_per_s"] = int(rate)
		}
	}
	nc.Close()
	if err != nil {
		return nil, err
	}
	ratio, on, off, err := putRatio(ctx, cfg, dir)
	if err != nil {
		return nil, err
	}
	res["put_per_s_streaming"], res["put_per_s_none"], res["streaming_put_ratio"] = int(on), int(off), round(ratio)
	printStateTable(w, res)
	return res, nil
}

// changeRate pushes n changes of `objects` (an object's info, as a seal
// makes) through svc and times them until svc has written every block.
func changeRate(svc streaming.StreamingService, n int) (float64, error) {
	c, err := streaming.NewCommitter(streaming.CommitterConfig{Node: "bench", Services: []streaming.StreamingService{svc}})
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	quit := make(chan struct{})
	defer func() { close(quit); wg.Wait() }()
	if err := svc.Stream(&wg, quit); err != nil {
		return 0, err
	}
	c.Run(&wg, quit)
	c.Snapshot(nil)
	info := streaming.ObjectInfo{DataSize: 1024, Digest: make([]byte, 32), Created: time.Now(), Construct: time.Microsecond, CreatorPID: 1}
	value := info.Append(nil)
	start := time.Now()
	for range n {
		id := store.RandomObjectID()
		c.Set(streaming.StoreObjects, id[:], value)
	}
	if err := c.Close(); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// putRatio starts a node streaming to every streamer (files with fsync,
// embedded NATS) and one streaming nothing, and compares their 1 KiB
// create+seal rates over alternating rounds (medians).
func putRatio(ctx context.Context, cfg StateConfig, dir string) (ratio, on, off float64, err error) {
	memory := strconv.Itoa(cfg.Creates*1200 + 64<<20)
	natsAddr, err := freeAddr()
	if err != nil {
		return 0, 0, 0, err
	}
	streamingArgs := []string{"--store.streamers", "file,nats", "--streamers.file.write_dir", filepath.Join(dir, "node-files"),
		"--nats", "embedded", "--nats-dir", filepath.Join(dir, "node-nats"), "--nats-listen", natsAddr}
	var nodes []*node
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	for i, args := range [][]string{streamingArgs, nil} {
		n, err := startNode(ctx, cfg.BinDir, filepath.Join(dir, fmt.Sprintf("s%d.sock", i)), fmt.Sprintf("n%d", i), memory, args, nil)
		if err != nil {
			return 0, 0, 0, err
		}
		nodes = append(nodes, n)
	}
	var rates [2][]time.Duration // per node: time per object, each round
	for r := range cfg.Rounds {
		order := []int{0, 1}
		if r%2 == 1 {
			order = []int{1, 0} // neither node always goes first
		}
		for _, i := range order {
			n := nodes[i]
			c, err := store.Connect(ctx, n.sock)
			if err != nil {
				return 0, 0, 0, err
			}
			r, err := createAndSealRate(ctx, c, cfg.Creates)
			c.Close()
			if err != nil {
				return 0, 0, 0, err
			}
			rates[i] = append(rates[i], time.Duration(float64(time.Second)/r))
		}
	}
	on = float64(time.Second) / float64(median(rates[0]))
	off = float64(time.Second) / float64(median(rates[1]))
	return on / off, on, off, nil
}

func printStateTable(w io.Writer, r map[string]any) {
	fmt.Fprintf(w, "%-40s %12v\n", "file streamer, fsync on (changes/s)", r["file_fsync_on_changes_per_s"])
	fmt.Fprintf(w, "%-40s %12v\n", "file streamer, fsync off (changes/s)", r["file_fsync_off_changes_per_s"])
	fmt.Fprintf(w, "%-40s %12v\n", "NATS streamer, embedded (changes/s)", r["nats_changes_per_s"])
	fmt.Fprintf(w, "%-40s %12v\n", "1 KiB create+seal/s, all streamers", r["put_per_s_streaming"])
	fmt.Fprintf(w, "%-40s %12v\n", "1 KiB create+seal/s, none", r["put_per_s_none"])
	fmt.Fprintf(w, "%-40s %12v\n", "streaming_put_ratio", r["streaming_put_ratio"])
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
