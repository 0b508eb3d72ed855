package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/plasmastream/plasmastream/store"
)

// SweepConfig bounds plasma bench sweep.
type SweepConfig struct {
	MinSize, MaxSize int // object sizes, ×4 from MinSize (default 1 KiB to 1 GiB)
	MaxBatch         int // objects per COPY, ×4 from 1 (default 65,536)
	BatchSize        int // bytes of each object of the batch sweep (default 4 KiB)
	Nodes            []int
	// Nodes are the group sizes of the broadcast sweep (default 2, 4, 8,
	// 16); an empty, non-nil list skips it. It needs root and iproute2.
	BroadcastSize int    // object bytes of the broadcast sweep (default 64 MiB)
	MaxRounds     int    // most timed rounds of one point (default 2000)
	Rate          string // link rate of the broadcast sweep (default 1gbit)
	BinDir        string
}

// SetDefaults fills every zero field with its default: the one place
// they are set (plasma bench's flags start from them).
func (c *SweepConfig) SetDefaults() {
	if c.MinSize == 0 {
		c.MinSize = 1 << 10
	}
	if c.MaxSize == 0 {
		c.MaxSize = 1 << 30
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 65536
	}
	if c.BatchSize == 0 {
		c.BatchSize = 4 << 10
	}
	if c.Nodes == nil {
		c.Nodes = []int{2, 4, 8, 16}
	}
	if c.BroadcastSize == 0 {
		c.BroadcastSize = 64 << 20
	}
	if c.Rate == "" {
		c.Rate = "1gbit"
	}
	if c.MaxRounds == 0 {
		c.MaxRounds = 2000
	}
}

// Validate reports the first bad value, naming its flag.
func (c *SweepConfig) Validate() error {
	for _, n := range c.Nodes {
		if n < 2 {
			return fmt.Errorf("--nodes %d: a broadcast group has at least 2 nodes (the source and a receiver)", n)
		}
	}
	return notNegative(map[string]int{"--min-size": c.MinSize, "--max-size": c.MaxSize, "--max-batch": c.MaxBatch,
		"--batch-size": c.BatchSize, "--broadcast-size": c.BroadcastSize, "--max-rounds": c.MaxRounds})
}

// sweepMoved is what each size point moves at least (within its round
// limits), so that small sizes are timed over many round trips.
const sweepMoved = 256 << 20

// Sweep measures how cost grows and writes one JSON object per line to
// w: SYNC COPY throughput and the CPU of both stream servers per GB
// against object size ("sweep":"size"), objects per second against
// objects per COPY ("sweep":"batch"), and broadcast time against group
// size ("sweep":"broadcast", through Broadcast). Each point is the median
// of its rounds.
func Sweep(ctx context.Context, cfg SweepConfig, w io.Writer) error {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	if err := sweepSizes(ctx, cfg, enc); err != nil {
		return err
	}
	if err := sweepBatches(ctx, cfg, enc); err != nil {
		return err
	}
	for _, n := range cfg.Nodes {
		bc := BroadcastConfig{Nodes: n - 1, Size: cfg.BroadcastSize, Rate: cfg.Rate, BinDir: cfg.BinDir}
		res, err := Broadcast(ctx, bc, io.Discard)
		if err != nil {
			return fmt.Errorf("broadcast to a group of %d nodes: %w", n, err)
		}
		enc.Encode(map[string]any{"sweep": "broadcast", "nodes": n, "bytes": cfg.BroadcastSize, "rate": cfg.Rate,
			"single_s": res["single_s"], "broadcast_s": res["broadcast_s"], "broadcast_ratio": res["broadcast_ratio"]})
	}
	return nil
}

// sweepPair starts two nodes with stores of memory bytes for one part of
// the sweep; stop stops them.
func sweepPair(ctx context.Context, binDir string, memory int) (a, b *node, stop func(), err error) {
	dir, err := os.MkdirTemp("", "psbsweep")
	if err != nil {
		return nil, nil, nil, err
	}
	var nodes []*node
	stop = func() {
		for _, n := range nodes {
			n.stop()
		}
		os.RemoveAll(dir)
	}
	for _, name := range []string{"a", "b"} {
		n, err := startNode(ctx, binDir, filepath.Join(dir, name+".sock"), name, strconv.Itoa(memory), nil, nil)
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes[0], nodes[1], stop, nil
}

func sweepSizes(ctx context.Context, cfg SweepConfig, enc *json.Encoder) error {
	a, b, stop, err := sweepPair(ctx, cfg.BinDir, cfg.MaxSize+64<<20)
	if err != nil {
		return err
	}
	defer stop()
	s, err := openSyncer(ctx, a, b)
	if err != nil {
		return err
	}
	defer s.close()
	src, err := store.Connect(ctx, b.sock)
	if err != nil {
		return err
	}
	defer src.Close()
	for size := cfg.MinSize; size <= cfg.MaxSize; size *= 4 {
		id, _, err := createInPlace(ctx, b.sock, size)
		if err != nil {
			return err
		}
		rounds := min(cfg.MaxRounds, max(3, sweepMoved/size))
		if size >= 1<<30 {
			rounds = 1
		}
		times := make([]time.Duration, 0, rounds)
		cpuStart := serversCPU(a, b)
		for range rounds {
			d, err := s.round(ctx, []store.ObjectID{id})
			if err != nil {
				return err
			}
			times = append(times, d)
		}
		cpu := perGB(serversCPU(a, b)-cpuStart, size, rounds)
		if _, err := src.Delete(ctx, id); err != nil {
			return err
		}
		enc.Encode(map[string]any{"sweep": "size", "bytes": size, "rounds": rounds,
			"GBps": sig3(float64(size) / 1e9 / median(times).Seconds()), "cpu_s_per_GB": sig3(cpu)})
	}
	return nil
}

func sweepBatches(ctx context.Context, cfg SweepConfig, enc *json.Encoder) error {
	a, b, stop, err := sweepPair(ctx, cfg.BinDir, cfg.MaxBatch*(cfg.BatchSize+128)+64<<20)
	if err != nil {
		return err
	}
	defer stop()
	src, err := store.Connect(ctx, b.sock)
	if err != nil {
		return err
	}
	defer src.Close()
	ids := make([]store.ObjectID, cfg.MaxBatch)
	buf := make([]byte, cfg.BatchSize)
	for i := range ids {
		copy(buf, strconv.Itoa(i))
		if ids[i], err = src.Put(ctx, buf, nil); err != nil {
			return err
		}
	}
	for n := 1; n <= cfg.MaxBatch; n *= 4 {
		rounds := min(cfg.MaxRounds, 200, max(3, cfg.MaxBatch/n))
		var times []time.Duration
		if err := timedSyncs(ctx, a, b, ids[:n], rounds, &times); err != nil {
			return err
		}
		enc.Encode(map[string]any{"sweep": "batch", "objects": n, "bytes": cfg.BatchSize, "rounds": rounds,
			"objects_per_s": int(float64(n) / median(times).Seconds())})
	}
	return nil
}

// sig3 rounds f to three significant digits: the sweep's figures span
// six orders of magnitude.
func sig3(f float64) float64 {
	if f == 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return f
	}
	p := math.Pow(10, 2-math.Floor(math.Log10(math.Abs(f))))
	return math.Round(f*p) / p
}
