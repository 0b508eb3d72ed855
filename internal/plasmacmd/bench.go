package plasmacmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/internal/bench"
)

func (o *options) benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the store and the transfers; the last line printed is JSON",
	}
	var cfg bench.StoreConfig
	cfg.SetDefaults()
	storeCmd := &cobra.Command{
		Use:   "store",
		Short: "Benchmark the store at -s (start it with -m 1GiB)",
		Long: `Benchmark the running store at -s: Put of a large object against
single-thread memcpy, Get+Release latency of a 1 KiB and a large object,
and 1 KiB create+seal rate from one client, one request per object
(create_seal_per_s) and the same objects in one CreateAndSealBatch
(create_seal_batch_per_s); with redis-server installed, the
same Gets against Redis. Prints a table and, as its last line, JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Socket = o.socket
			return o.runBench(cmd, func(ctx context.Context, w io.Writer) (any, error) { return bench.Store(ctx, cfg, w) })
		},
	}
	f := storeCmd.Flags()
	f.IntVar(&cfg.LargeSize, "large", cfg.LargeSize, "bytes of the large object")
	f.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "timed repetitions of each large operation")
	f.IntVar(&cfg.GetIters, "gets", cfg.GetIters, "Get+Release round trips per size")
	f.IntVar(&cfg.Creates, "creates", cfg.Creates, "1 KiB objects created and sealed (by each method)")
	var scfg bench.StreamConfig
	scfg.SetDefaults()
	streamCmd := &cobra.Command{
		Use:   "stream",
		Short: "Benchmark transfers between two nodes it starts itself",
		Long: `Start two stores and two stream servers (binaries beside this program or
on PATH) on loopback and measure: one large object moved by SYNC COPY
against iperf3 single-stream throughput over the same loopback (apt-get
install iperf3); the same object fetched as verified ranges (the engine of
FETCH and PULL) with every 16 KiB group checked against its bao outboard,
and again with verification off (verified_ratio is the first over the
second, rounds alternating); and many small objects in one COPY. With
--tls, two more nodes with their own keys and a trust file (made in a temp
directory) run mutual TLS, and the large object's SYNC COPY is timed
between them too, rounds alternating with the plain pair: tls_ratio is the
TLS rate over the plain one, and tls_cpu_s_per_GB and plain_cpu_s_per_GB
the CPU both stream servers spent per GB on each side. copy_cpu_s_per_GB
is the CPU of both stream servers per GB copied (the kernel's per-process
CPU clock), iperf3_cpu_s_per_GB that of both iperf3 ends (iperf3's
own report), copy_cpu_ratio the first over the second. With --peers, the
same object also moves with an Apache Arrow Flight DoGet into preallocated
memory, with gRPC defaults and tuned (flight_GBps, flight_tuned_GBps, and
flight_ratio, our verified COPY over the faster Flight, unverified): the
program is the separate Go module bench/flight, built with the go command
from the source tree. Prints a table and, as its last line, JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.runBench(cmd, func(ctx context.Context, w io.Writer) (any, error) { return bench.Stream(ctx, scfg, w) })
		},
	}
	sf := streamCmd.Flags()
	sf.IntVar(&scfg.LargeSize, "large", scfg.LargeSize, "bytes of the large object")
	sf.IntVar(&scfg.SmallCount, "small-count", scfg.SmallCount, "small objects in one COPY")
	sf.IntVar(&scfg.SmallSize, "small-size", scfg.SmallSize, "bytes of each small object")
	sf.IntVar(&scfg.Rounds, "rounds", scfg.Rounds, "timed repetitions")
	sf.BoolVar(&scfg.TLS, "tls", scfg.TLS, "also time the SYNC COPY of the large object between two nodes running mutual TLS (tls_copy_GBps, tls_ratio, CPU per GB of each side)")
	sf.BoolVar(&scfg.Peers, "peers", scfg.Peers, "also move the large object with Apache Arrow Flight DoGet (needs the go command and the source tree)")
	sf.StringVar(&scfg.FlightSrc, "flight-src", scfg.FlightSrc, "directory of bench/flight for --peers (default: found above the working directory or this program)")
	sf.StringVar(&scfg.BinDir, "bin", scfg.BinDir, "directory of plasma-store-server and plasma-stream-server (default: beside this program, then PATH)")
	sf.BoolVar(&scfg.Huge, "huge", false, "instead, move one 5 GiB object (over the 4 GiB line): a verified SYNC COPY (digest checked) and a PULL, verified and not; needs two stores of 5 GiB + 64 MiB")
	var bcfg bench.BroadcastConfig
	bcfg.SetDefaults()
	bcastCmd := &cobra.Command{
		Use:   "broadcast",
		Short: "Benchmark spreading an object to a group over rate-limited links (root, iproute2)",
		Long: `Put every node (a store and a stream server) in its own network namespace,
joined by veth links rate-limited with tc, and time one 256 MiB object to
one node and another to every node through a prefetch group. Removes every
namespace, link and process it made. Prints a table and, last, JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.runBench(cmd, func(ctx context.Context, w io.Writer) (any, error) { return bench.Broadcast(ctx, bcfg, w) })
		},
	}
	bf := bcastCmd.Flags()
	bf.IntVar(&bcfg.Nodes, "nodes", bcfg.Nodes, "receiving nodes")
	bf.IntVar(&bcfg.Size, "size", bcfg.Size, "object bytes")
	bf.StringVar(&bcfg.Rate, "rate", bcfg.Rate, "rate of every node's link, each way (tc units)")
	bf.IntVar(&bcfg.Fanout, "fanout", bcfg.Fanout, "transfers one source serves at once (0: the server's default)")
	bf.StringVar(&bcfg.BinDir, "bin", bcfg.BinDir, "directory of the server binaries (default: beside this program, then PATH)")
	cmd.AddCommand(storeCmd, streamCmd, bcastCmd, o.benchStateCmd(), o.benchColdCmd(), o.benchBridgeCmd(), o.benchSweepCmd())
	return cmd
}

func (o *options) benchStateCmd() *cobra.Command {
	var cfg bench.StateConfig
	cfg.SetDefaults()
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Benchmark state streaming: changes/s per streamer and its cost to puts",
		Long: `Push changes through the file streamer (fsync on, then off) and the NATS
streamer (an embedded JetStream server), in process, and print changes/s;
then start two stores with stream servers (binaries beside this program or
on PATH), one running every streamer and one none, and time 1 KiB
create+seal on each, rounds alternating: streaming_put_ratio is the first
rate over the second. Prints a table and, as its last line, JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.runBench(cmd, func(ctx context.Context, w io.Writer) (any, error) { return bench.State(ctx, cfg, w) })
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Changes, "changes", cfg.Changes, "changes pushed through each streamer")
	f.IntVar(&cfg.Creates, "creates", cfg.Creates, "1 KiB objects created and sealed per round and node")
	f.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "alternating rounds of the put comparison")
	return cmd
}

func (o *options) benchColdCmd() *cobra.Command {
	var cfg bench.ColdConfig
	cfg.SetDefaults()
	cmd := &cobra.Command{
		Use:   "cold",
		Short: "Benchmark spilling to and restoring from a cold tier (file:// and S3)",
		Long: `Start a store in this process with a cold tier and time the spill (an
Evict that writes the object to the tier) and the restore (a Get that reads
it back, every 16 KiB group verified) of one object, through a directory on
disk and through S3 (versitygw on loopback, installed by scripts/versitygw.sh),
each beside the raw speed of the same medium in the same run, rounds
alternating: dd of the same bytes from shared memory to a file (fsync) and
back; a plain PUT and GET of the same bytes with the same S3 client.
spill_ratio and restore_ratio are the store's rate over the raw one (best
rounds). Prints a table and, as its last line, JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.runBench(cmd, func(ctx context.Context, w io.Writer) (any, error) { return bench.Cold(ctx, cfg, w) })
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Size, "size", cfg.Size, "bytes of the object")
	f.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "timed repetitions")
	f.StringVar(&cfg.Dir, "dir", cfg.Dir, "directory of the file:// tier (on the disk to measure)")
	f.StringVar(&cfg.VersityGW, "versitygw", cfg.VersityGW, "the S3 server's binary (default: ~/.cache/plasma-tools/bin/versitygw, then PATH); none: skip S3")
	return cmd
}

// runBench runs a benchmark that prints its table on the command's
// output, then prints its result as the last line, in JSON.
func (o *options) runBench(cmd *cobra.Command, run func(context.Context, io.Writer) (any, error)) error {
	ctx, cancel := o.context()
	defer cancel()
	res, err := run(ctx, cmd.OutOrStdout())
	if err != nil {
		return err
	}
	b, _ := json.Marshal(res)
	fmt.Fprintln(cmd.OutOrStdout(), string(b))
	return nil
}

func (o *options) benchSweepCmd() *cobra.Command {
	var cfg bench.SweepConfig
	cfg.SetDefaults()
	var noBroadcast bool
	cmd := &cobra.Command{
		Use:   "sweep",
		Short: "Measure how cost grows: object size, objects per COPY, broadcast group size (JSON lines)",
		Long: `Start pairs of stores and stream servers (binaries beside this program or
on PATH) on loopback and print one JSON object per line: SYNC COPY
throughput and both stream servers' CPU seconds per GB against object size
("sweep":"size", ×4 from --min-size to --max-size), objects per second
against objects per COPY ("sweep":"batch", ×4 from 1 to --max-batch), and,
for each --nodes, the time to broadcast one object to a group of that many
nodes in network namespaces over rate-limited links ("sweep":"broadcast";
root and iproute2, as plasma bench broadcast). scripts/plots.sh turns the
lines into the SVG plots of docs/plots/.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := o.context()
			defer cancel()
			if noBroadcast {
				cfg.Nodes = []int{}
			}
			return bench.Sweep(ctx, cfg, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.MinSize, "min-size", cfg.MinSize, "smallest object bytes of the size sweep")
	f.IntVar(&cfg.MaxSize, "max-size", cfg.MaxSize, "largest object bytes of the size sweep (two stores of this + 64 MiB are started)")
	f.IntVar(&cfg.MaxBatch, "max-batch", cfg.MaxBatch, "most objects in one COPY")
	f.IntVar(&cfg.BatchSize, "batch-size", cfg.BatchSize, "bytes of each object of the batch sweep")
	f.IntSliceVar(&cfg.Nodes, "nodes", cfg.Nodes, "group sizes of the broadcast sweep (a source and n-1 receivers)")
	f.BoolVar(&noBroadcast, "no-broadcast", false, "skip the broadcast sweep (it needs root and iproute2)")
	f.IntVar(&cfg.BroadcastSize, "broadcast-size", cfg.BroadcastSize, "object bytes of the broadcast sweep")
	f.StringVar(&cfg.Rate, "rate", cfg.Rate, "rate of every node's link in the broadcast sweep, each way (tc units)")
	f.IntVar(&cfg.MaxRounds, "max-rounds", cfg.MaxRounds, "most timed rounds of one point (small sizes and batches are repeated up to this, to move 256 MiB)")
	f.StringVar(&cfg.BinDir, "bin", cfg.BinDir, "directory of the server binaries (default: beside this program, then PATH)")
	return cmd
}
