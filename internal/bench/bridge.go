package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/plasmastream/plasmastream/internal/bridge"
	"github.com/plasmastream/plasmastream/store"
)

// BridgeConfig sizes the NATS bridge benchmark.
type BridgeConfig struct {
	Size   int // bytes of the blob and of the imported file (default 1 GiB)
	Rounds int // timed repetitions (default 3)
	BinDir string
}

// SetDefaults fills every zero field with its default.
func (c *BridgeConfig) SetDefaults() {
	if c.Size == 0 {
		c.Size = 1 << 30
	}
	if c.Rounds == 0 {
		c.Rounds = 3
	}
}

// Validate reports the first bad value, naming its flag.
func (c *BridgeConfig) Validate() error {
	return notNegative(map[string]int{"--size": c.Size, "--rounds": c.Rounds})
}

// Bridge measures the NATS bridge on three nodes it starts on loopback: a
// (with the embedded NATS) announces a blob that b1 and b2 subscribe to;
// the time until both hold it is set against one SYNC COPY of the same
// blob from a to b1 in the same round (replicate_ratio, median over
// median). Then a imports a file by NATS request, against cp of the same
// file to /dev/shm.
func Bridge(ctx context.Context, cfg BridgeConfig, w io.Writer) (map[string]any, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "psbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	natsAddr := ln.Addr().String()
	ln.Close()
	memory := strconv.Itoa(cfg.Size + 64<<20)
	var nodes []*node
	defer func() {
		for i := len(nodes) - 1; i >= 0; i-- { // a, with the NATS, last
			nodes[i].stop()
		}
	}()
	for i, name := range []string{"a", "b1", "b2"} {
		args := []string{"--nats", "nats://" + natsAddr, "--subscribe.subjects", "bench.>"}
		if i == 0 {
			args = []string{"--nats", "embedded", "--nats-listen", natsAddr, "--nats-dir", filepath.Join(dir, "nats")}
		}
		n, err := startNode(ctx, cfg.BinDir, filepath.Join(dir, name+".sock"), name, memory, args, nil)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	nc, err := nats.Connect("nats://"+natsAddr, nats.Name("plasma bench bridge"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	res := map[string]any{"bytes": cfg.Size, "rounds": cfg.Rounds}
	if err := benchReplicate(ctx, nc, nodes, cfg, res); err != nil {
		return nil, err
	}
	if err := benchImport(ctx, nc, nodes[0], dir, cfg, res); err != nil {
		return nil, err
	}
	printBridgeTable(w, res)
	return res, nil
}

// benchReplicate runs the rounds of replication against a single copy.
func benchReplicate(ctx context.Context, nc *nats.Conn, nodes []*node, cfg BridgeConfig, res map[string]any) error {
	a, b1 := nodes[0], nodes[1]
	// A report names its subject and node: a round ends when both
	// subscribers have reported its own subject, never on a late or
	// repeated report of another round.
	replicated := make(chan [2]string, 64)
	sub, err := nc.Subscribe("plasma.replicated.>", func(m *nats.Msg) {
		var r struct {
			Node string `json:"node"`
		}
		json.Unmarshal(m.Data, &r)
		replicated <- [2]string{strings.TrimPrefix(m.Subject, "plasma.replicated."), r.Node}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	s, err := openSyncer(ctx, b1, a)
	if err != nil {
		return err
	}
	defer s.close()
	var copies, reps []time.Duration
	var cpu time.Duration
	for round := range cfg.Rounds {
		data := make([]byte, cfg.Size)
		for i := 0; i < len(data); i += 4096 {
			data[i] = byte(i>>12) ^ byte(round+1) // a new blob each round: a replicated one is never fetched again
		}
		id, err := putObject(ctx, a, data)
		data = nil
		if err != nil {
			return err
		}
		d, err := s.round(ctx, []store.ObjectID{id}) // deletes it from b1 again
		if err != nil {
			return err
		}
		copies = append(copies, d)
		cpuStart := serversCPU(nodes...)
		start := time.Now()
		subject := fmt.Sprintf("bench.r%d", round)
		if err := bridge.Request(nc, "plasma.announce.a", []byte(fmt.Sprintf("%s %s", id, subject)), time.Minute, nil); err != nil {
			return err
		}
		if err := awaitReplicated(ctx, replicated, subject, 5*time.Minute, "b1", "b2"); err != nil {
			return err
		}
		reps = append(reps, time.Since(start))
		cpu += serversCPU(nodes...) - cpuStart
		for _, n := range nodes {
			if err := deleteObject(ctx, n, id); err != nil {
				return err
			}
		}
	}
	res["copy_GBps"] = round(float64(cfg.Size) / 1e9 / median(copies).Seconds())
	res["replicate_two_GBps"] = round(float64(cfg.Size) / 1e9 / median(reps).Seconds())
	res["replicate_ratio"] = round(median(reps).Seconds() / median(copies).Seconds())
	res["replicate_cpu_s_per_GB"] = round(perGB(cpu, 2*cfg.Size, cfg.Rounds)) // per GB received
	return nil
}

// awaitReplicated returns once every one of nodes has reported the blob
// of subject replicated (reports are [subject, node]); reports of other
// subjects, late ones of an earlier round, and repeats do not count.
func awaitReplicated(ctx context.Context, reports <-chan [2]string, subject string, limit time.Duration, nodes ...string) error {
	timeout := time.After(limit)
	nodes = slices.Clone(nodes)
	for len(nodes) > 0 {
		select {
		case r := <-reports:
			if i := slices.Index(nodes, r[1]); r[0] == subject && i >= 0 {
				nodes = slices.Delete(nodes, i, i+1)
			}
		case <-timeout:
			return fmt.Errorf("%v did not replicate the blob of %s within %v", nodes, subject, limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// benchImport times import by request against cp to /dev/shm.
func benchImport(ctx context.Context, nc *nats.Conn, a *node, dir string, cfg BridgeConfig, res map[string]any) error {
	file := filepath.Join(dir, "import.bin")
	data := make([]byte, cfg.Size)
	for i := 0; i < len(data); i += 4096 {
		data[i] = byte(i >> 12)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return err
	}
	data = nil
	shm := filepath.Join("/dev/shm", filepath.Base(dir)+"-cp")
	defer os.Remove(shm)
	var imports, cps []time.Duration
	var cpu time.Duration
	for range cfg.Rounds {
		start := time.Now()
		if out, err := exec.CommandContext(ctx, "cp", file, shm).CombinedOutput(); err != nil {
			return fmt.Errorf("cp %s %s: %v: %s", file, shm, err, out)
		}
		cps = append(cps, time.Since(start))
		os.Remove(shm)
		var im struct {
			ID store.ObjectID `json:"id"`
		}
		cpuStart := serversCPU(a)
		start = time.Now()
		if err := bridge.Request(nc, "plasma.import.a", []byte(file), 5*time.Minute, &im); err != nil {
			return err
		}
		imports = append(imports, time.Since(start))
		cpu += serversCPU(a) - cpuStart
		if err := deleteObject(ctx, a, im.ID); err != nil {
			return err
		}
	}
	res["import_GBps"] = round(float64(cfg.Size) / 1e9 / median(imports).Seconds())
	res["cp_shm_GBps"] = round(float64(cfg.Size) / 1e9 / median(cps).Seconds())
	res["import_ratio"] = round(median(cps).Seconds() / median(imports).Seconds())
	res["import_cpu_s_per_GB"] = round(perGB(cpu, cfg.Size, cfg.Rounds))
	return nil
}

func deleteObject(ctx context.Context, n *node, id store.ObjectID) error {
	c, err := store.Connect(ctx, n.sock)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Delete(ctx, id)
	return err
}

func printBridgeTable(w io.Writer, r map[string]any) {
	mib := r["bytes"].(int) >> 20
	fmt.Fprintf(w, "plasma NATS bridge benchmark (three nodes on loopback; a shared machine: figures are noisy)\n")
	fmt.Fprintf(w, "  %-52s %8v GB/s\n", fmt.Sprintf("SYNC COPY of one %d MiB blob, a to b1", mib), r["copy_GBps"])
	fmt.Fprintf(w, "  %-52s %8v GB/s  (replicate_ratio %v: time ÷ one copy's)\n", "announce on a until b1 and b2 both hold it", r["replicate_two_GBps"], r["replicate_ratio"])
	fmt.Fprintf(w, "  %-52s %8v s of CPU per GB received, all stream servers\n", "replication CPU", r["replicate_cpu_s_per_GB"])
	fmt.Fprintf(w, "  %-52s %8v GB/s\n", fmt.Sprintf("import by NATS request of a %d MiB file", mib), r["import_GBps"])
	fmt.Fprintf(w, "  %-52s %8v GB/s  (import_ratio %v: cp time ÷ import time)\n", "cp of the same file to /dev/shm", r["cp_shm_GBps"], r["import_ratio"])
	fmt.Fprintf(w, "  %-52s %8v s of CPU per GB, the stream server\n", "import CPU", r["import_cpu_s_per_GB"])
}
