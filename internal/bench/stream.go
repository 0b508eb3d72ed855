package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// StreamConfig sizes the stream benchmark.
type StreamConfig struct {
	LargeSize  int // bytes of the large object (default 1 GiB)
	SmallCount int // small objects in one COPY (default 10,000)
	SmallSize  int // bytes of each (default 4 KiB)
	Rounds     int // timed repetitions (default 3)
	IperfSecs  int // iperf3 run length (default 3)
	BinDir     string
	// TLS also copies the large object between a second pair of nodes
	// that run mutual TLS, rounds alternating with the plain pair.
	TLS bool
	// Peers also moves the large object with Apache Arrow Flight (the
	// program in bench/flight, built from FlightSrc: default, found
	// above the working directory or this executable).
	Peers     bool
	FlightSrc string
	// Huge runs only the 5 GiB benchmark (Huge) instead.
	Huge bool
}

// SetDefaults fills every zero field with its default: the one place
// they are set (plasma bench's flags start from them).
func (c *StreamConfig) SetDefaults() {
	if c.LargeSize == 0 {
		c.LargeSize = 1 << 30
	}
	if c.SmallCount == 0 {
		c.SmallCount = 10000
	}
	if c.SmallSize == 0 {
		c.SmallSize = 4 << 10
	}
	if c.Rounds == 0 {
		c.Rounds = 3
	}
	if c.IperfSecs == 0 {
		c.IperfSecs = 3
	}
}

// Validate reports the first bad value, naming its flag.
func (c *StreamConfig) Validate() error {
	return notNegative(map[string]int{"--large": c.LargeSize, "--small-count": c.SmallCount, "--small-size": c.SmallSize, "--rounds": c.Rounds, "iperf3 seconds": c.IperfSecs})
}

// node is a store and a stream server started by the benchmark.
type node struct {
	sock, addr string
	procs      []*exec.Cmd     // the store, then the stream server
	opts       []stream.Option // what a client needs to connect (keys, with TLS)
}

// serverPID is the process id of the node's stream server.
func (n *node) serverPID() int { return n.procs[len(n.procs)-1].Process.Pid }

func (n *node) stop() {
	for i := len(n.procs) - 1; i >= 0; i-- {
		n.procs[i].Process.Signal(os.Interrupt)
		n.procs[i].Wait()
	}
}

// Stream measures transfers between two nodes it starts itself: one large
// object by SYNC COPY against iperf3 over the same loopback, and many
// small objects in one COPY.
func Stream(ctx context.Context, cfg StreamConfig, w io.Writer) (map[string]any, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Huge {
		return Huge(ctx, 0, cfg.BinDir, w)
	}
	dir, err := os.MkdirTemp("", "psbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	memory := strconv.Itoa(cfg.LargeSize + cfg.SmallCount*(cfg.SmallSize+64) + 64<<20)
	var nodes []*node
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	for _, name := range []string{"a", "b"} {
		n, err := startNode(ctx, cfg.BinDir, filepath.Join(dir, name+".sock"), name, memory, nil, nil)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	a, b := nodes[0], nodes[1]
	pairs := [][2]*node{{a, b}}
	if cfg.TLS {
		tlsNodes, err := startTLSNodes(ctx, cfg.BinDir, dir, memory)
		nodes = append(nodes, tlsNodes...)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, [2]*node{tlsNodes[0], tlsNodes[1]})
	}
	res := map[string]any{"large_bytes": cfg.LargeSize, "small_count": cfg.SmallCount, "small_bytes": cfg.SmallSize}

	// iperf3 runs before and after the copies and the mean is the
	// baseline: this shared machine's throughput drifts by ±15 % over a
	// minute, and bracketing the copies cancels most of that.
	before, err := iperf3(ctx, cfg.IperfSecs)
	if err != nil {
		res["iperf3"] = "error: " + err.Error()
	}
	copies, id, err := copyLarge(ctx, pairs, cfg)
	if err != nil {
		return nil, err
	}
	copyRate := copies[0].rate
	res["copy_cpu_s_per_GB"] = round(copies[0].cpu)
	if cfg.TLS {
		res["tls_copy_GBps"] = round(copies[1].rate)
		res["tls_ratio"] = round(copies[1].rate / copyRate)
		res["plain_cpu_s_per_GB"] = round(copies[0].cpu)
		res["tls_cpu_s_per_GB"] = round(copies[1].cpu)
	}
	pull, err := pullLarge(ctx, a.sock, b.sock, b.addr, id, cfg.LargeSize, cfg.Rounds)
	if err != nil {
		return nil, err
	}
	res["outboard_build_s"] = round(pull.build.Seconds())
	res["pull_GBps"], res["pull_unverified_GBps"] = round(pull.verified), round(pull.unverified)
	res["verified_ratio"] = round(pull.verified / pull.unverified)
	res["verify_cpu_s_per_GB"] = round(pull.verifyCPU)
	if cfg.Peers {
		if err := flightPeer(ctx, cfg, copyRate, res); err != nil {
			return nil, err
		}
	}
	var iperf, iperfCPU float64
	if before.rate > 0 {
		if after, err := iperf3(ctx, cfg.IperfSecs); err == nil {
			iperf, iperfCPU = (before.rate+after.rate)/2, (before.cpu+after.cpu)/2
		} else {
			iperf, iperfCPU = before.rate, before.cpu
		}
		res["iperf3_GBps"] = round(iperf)
		res["iperf3_cpu_s_per_GB"] = round(iperfCPU)
	}
	res["copy_GBps"] = round(copyRate)
	if iperf > 0 {
		res["copy_ratio"] = round(copyRate / iperf)
		res["pull_ratio"] = round(pull.verified / iperf)
	}
	if iperfCPU > 0 {
		res["copy_cpu_ratio"] = round(copies[0].cpu / iperfCPU)
	}
	small, err := copySmall(ctx, a, b, cfg)
	if err != nil {
		return nil, err
	}
	res["small_objects_per_s"] = int(small)
	printStreamTable(w, res)
	return res, nil
}

// binary finds a program beside the running executable, else on PATH.
func binary(dir, name string) (string, error) {
	if dir == "" {
		if exe, err := os.Executable(); err == nil {
			dir = filepath.Dir(exe)
		}
	}
	if p := filepath.Join(dir, name); fileExists(p) {
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s is neither beside this program nor on PATH (go build -o bin/ ./cmd/...)", name)
	}
	return p, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// startNode starts a store at sock and a stream server on a free loopback
// port with the extra flags args, and waits until a client with opts can
// connect.
func startNode(ctx context.Context, binDir, sock, name, memory string, args []string, opts []stream.Option) (*node, error) {
	storeBin, err := binary(binDir, "plasma-store-server")
	if err != nil {
		return nil, err
	}
	streamBin, err := binary(binDir, "plasma-stream-server")
	if err != nil {
		return nil, err
	}
	n := &node{sock: sock, opts: opts}
	st := exec.Command(storeBin, "-m", memory, "-s", sock, "--log-level", "warn")
	st.Stderr = os.Stderr
	if err := st.Start(); err != nil {
		return nil, err
	}
	n.procs = append(n.procs, st)
	if err := waitUnix(sock, 30*time.Second); err != nil {
		n.stop()
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.stop()
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	n.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ss := exec.Command(streamBin, append([]string{"-s", sock, "-p", strconv.Itoa(port), "--bind", "127.0.0.1", "--node-name", name, "--log-level", "warn"}, args...)...)
	ss.Stderr = os.Stderr
	if err := ss.Start(); err != nil {
		n.stop()
		return nil, err
	}
	n.procs = append(n.procs, ss)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := stream.Connect(ctx, n.addr, opts...); err == nil {
			c.Close()
			return n, nil
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("stream server %s not answering on %s", name, n.addr)
		}
	}
}

// iperf3 measures single-stream loopback throughput and the CPU both
// ends spent per GB.
func iperf3(ctx context.Context, secs int) (copyRate, error) {
	bin, err := exec.LookPath("iperf3")
	if err != nil {
		return copyRate{}, fmt.Errorf("iperf3 is not installed (apt-get install iperf3)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return copyRate{}, err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	srv := exec.CommandContext(ctx, bin, "-s", "-1", "-B", "127.0.0.1", "-p", port)
	if err := srv.Start(); err != nil {
		return copyRate{}, err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	var out []byte
	for range 50 {
		time.Sleep(50 * time.Millisecond)
		out, err = exec.CommandContext(ctx, bin, "-c", "127.0.0.1", "-p", port, "-t", strconv.Itoa(secs), "-J").Output()
		if err == nil {
			break
		}
	}
	if err != nil {
		return copyRate{}, fmt.Errorf("iperf3 client: %v", err)
	}
	return parseIperf3(out)
}

// copyRate is the outcome of copyLarge for one pair of nodes.
type copyRate struct {
	rate float64 // GB/s, median of rounds
	cpu  float64 // CPU seconds per GB of both stream servers
}

// copyLarge times SYNC COPY of one large object from each pair's second
// node into its first (median of rounds), with verification on as
// always, and the CPU its two stream servers spent. Rounds alternate
// between the pairs so that all see the same machine. The object stays in
// the second nodes.
func copyLarge(ctx context.Context, pairs [][2]*node, cfg StreamConfig) ([]copyRate, store.ObjectID, error) {
	data := make([]byte, cfg.LargeSize)
	for i := 0; i < len(data); i += 4096 {
		data[i] = byte(i >> 12)
	}
	var id store.ObjectID
	syncers := make([]*syncer, len(pairs))
	defer func() {
		for _, s := range syncers {
			s.close()
		}
	}()
	for i, p := range pairs {
		var err error
		if id, err = putObject(ctx, p[1], data); err != nil {
			return nil, id, err
		}
		if syncers[i], err = openSyncer(ctx, p[0], p[1]); err != nil {
			return nil, id, err
		}
	}
	data = nil
	times := make([][]time.Duration, len(pairs))
	cpu := make([]time.Duration, len(pairs))
	for range cfg.Rounds {
		for i, p := range pairs {
			cpuStart := serversCPU(p[:]...)
			d, err := syncers[i].round(ctx, []store.ObjectID{id})
			if err != nil {
				return nil, id, err
			}
			times[i] = append(times[i], d)
			cpu[i] += serversCPU(p[:]...) - cpuStart
		}
	}
	rates := make([]copyRate, len(pairs))
	for i := range pairs {
		rates[i] = copyRate{
			rate: float64(cfg.LargeSize) / 1e9 / median(times[i]).Seconds(),
			cpu:  perGB(cpu[i], cfg.LargeSize, cfg.Rounds),
		}
	}
	return rates, id, nil
}

// putObject puts data into n's store; the store keeps its digest.
func putObject(ctx context.Context, n *node, data []byte) (store.ObjectID, error) {
	src, err := store.Connect(ctx, n.sock)
	if err != nil {
		return store.ObjectID{}, err
	}
	defer src.Close()
	id, err := src.Put(ctx, data, nil) // content-addressed
	if err != nil {
		return id, fmt.Errorf("put the large object into %s: %w", n.addr, err)
	}
	return id, nil
}

type pullRates struct {
	build                time.Duration
	verified, unverified float64 // GB/s
	verifyCPU            float64 // the receiver's extra CPU seconds per GB when verifying
}

// pullLarge times verified range fetches (transfer.Fetch, the engine of
// FETCH and PULL, run in this process against the stream server at
// srcAddr into the store at dstSock) against the same fetches with
// verification off, alternating so that both see the same machine, and
// returns the medians and this process's CPU time per GB. It first has
// the source's store (srcSock) build the object's outboard, which it does
// once per object.
func pullLarge(ctx context.Context, dstSock, srcSock, srcAddr string, id store.ObjectID, size, rounds int) (pullRates, error) {
	var r pullRates
	src, err := store.Connect(ctx, srcSock)
	if err != nil {
		return r, err
	}
	defer src.Close()
	start := time.Now()
	if _, _, err := src.Outboard(ctx, id); err != nil {
		return r, fmt.Errorf("outboard of the large object in b: %w", err)
	}
	r.build = time.Since(start)
	dst, err := store.Connect(ctx, dstSock)
	if err != nil {
		return r, err
	}
	defer dst.Close()
	partials := transfer.NewPartials(0, 0)
	var cpu [2]time.Duration
	dial := func(ctx context.Context, addr string) (*transfer.Conn, error) {
		c, _, err := transfer.Dial(ctx, addr, streamwire.RolePeer, "bench", 0, nil)
		return c, err
	}
	var times [2][]time.Duration
	for i := range 2 * rounds {
		noVerify := i%2 == 1
		start, cpuStart := time.Now(), cpuTime()
		res := transfer.Fetch(ctx, dst, id, []transfer.Source{{Node: "source", Addr: srcAddr, Full: true}},
			transfer.FetchOptions{Partials: partials, Dial: dial, NoVerify: noVerify})
		if res.Status != streamwire.StatusOK {
			return r, fmt.Errorf("pull of the large object from %s: %s: %s", srcAddr, res.Status, res.Message)
		}
		times[i%2] = append(times[i%2], time.Since(start))
		cpu[i%2] += cpuTime() - cpuStart
		if _, err := dst.Delete(ctx, id); err != nil {
			return r, err
		}
	}
	r.verified = float64(size) / 1e9 / median(times[0]).Seconds()
	r.unverified = float64(size) / 1e9 / median(times[1]).Seconds()
	r.verifyCPU = perGB(cpu[0]-cpu[1], size, rounds)
	return r, nil
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perGB is CPU time d spent moving rounds×size bytes, in seconds per GB.
func perGB(d time.Duration, size, rounds int) float64 {
	return d.Seconds() / (float64(size) * float64(rounds) / 1e9)
}

// copySmall times one COPY of many small objects.
func copySmall(ctx context.Context, a, b *node, cfg StreamConfig) (float64, error) {
	src, err := store.Connect(ctx, b.sock)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	ids := make([]store.ObjectID, cfg.SmallCount)
	buf := make([]byte, cfg.SmallSize)
	for i := range ids {
		copy(buf, strconv.Itoa(i))
		if ids[i], err = src.Put(ctx, buf, nil); err != nil {
			return 0, err
		}
	}
	var times []time.Duration
	err = timedSyncs(ctx, a, b, ids, cfg.Rounds, &times)
	return float64(cfg.SmallCount) / median(times).Seconds(), err
}

// timedSyncs runs rounds of SYNC COPY of ids from b into a, deleting them
// from a after each.
func timedSyncs(ctx context.Context, a, b *node, ids []store.ObjectID, rounds int, times *[]time.Duration) error {
	s, err := openSyncer(ctx, a, b)
	if err != nil {
		return err
	}
	defer s.close()
	for range rounds {
		d, err := s.round(ctx, ids)
		if err != nil {
			return err
		}
		*times = append(*times, d)
	}
	return nil
}

func printStreamTable(w io.Writer, r map[string]any) {
	fmt.Fprintf(w, "plasma stream benchmark (two nodes on loopback, verification on)\n")
	if v, ok := r["iperf3_GBps"]; ok {
		fmt.Fprintf(w, "  %-44s %10v GB/s\n", "iperf3, one TCP stream", v)
	} else {
		fmt.Fprintf(w, "  iperf3: %v\n", r["iperf3"])
	}
	fmt.Fprintf(w, "  %-44s %10v GB/s", fmt.Sprintf("SYNC COPY of one %d MiB object", r["large_bytes"].(int)>>20), r["copy_GBps"])
	if v, ok := r["copy_ratio"]; ok {
		fmt.Fprintf(w, "  (ratio %v)", v)
	}
	fmt.Fprintln(w)
	if v, ok := r["tls_copy_GBps"]; ok {
		fmt.Fprintf(w, "  %-44s %10v GB/s  (tls_ratio %v)\n", "the same SYNC COPY with mutual TLS", v, r["tls_ratio"])
		fmt.Fprintf(w, "  %-44s %10v s/GB\n", "both stream servers' CPU, plain COPY", r["plain_cpu_s_per_GB"])
		fmt.Fprintf(w, "  %-44s %10v s/GB\n", "both stream servers' CPU, TLS COPY", r["tls_cpu_s_per_GB"])
	}
	fmt.Fprintf(w, "  %-44s %10v s\n", "outboard of the large object, built once", r["outboard_build_s"])
	fmt.Fprintf(w, "  %-44s %10v GB/s", "PULL (ranges, every 16 KiB group verified)", r["pull_GBps"])
	if v, ok := r["pull_ratio"]; ok {
		fmt.Fprintf(w, "  (ratio %v)", v)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  %-44s %10v GB/s  (verified_ratio %v)\n", "the same PULL, verification off", r["pull_unverified_GBps"], r["verified_ratio"])
	fmt.Fprintf(w, "  %-44s %10v s/GB\n", "receiver CPU spent verifying", r["verify_cpu_s_per_GB"])
	fmt.Fprintf(w, "  %-44s %10v /s\n", fmt.Sprintf("COPY of %d objects of %d bytes", r["small_count"], r["small_bytes"]), r["small_objects_per_s"])
	printCPUAndPeers(w, r)
}
