package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// BroadcastConfig sizes the broadcast benchmark.
type BroadcastConfig struct {
	Nodes  int    // receivers (default 8)
	Size   int    // object bytes (default 256 MiB)
	Rate   string // tc rate of every node's link, each way (default 1gbit)
	Fanout int    // transfers one source serves at once (default: the server's)
	BinDir string
}

// SetDefaults fills every zero field with its default: the one place
// they are set (plasma bench's flags start from them). Fanout's zero
// means the server's default.
func (c *BroadcastConfig) SetDefaults() {
	if c.Nodes == 0 {
		c.Nodes = 8
	}
	if c.Size == 0 {
		c.Size = 256 << 20
	}
	if c.Rate == "" {
		c.Rate = "1gbit"
	}
}

// Validate reports the first bad value, naming its flag.
func (c *BroadcastConfig) Validate() error {
	return notNegative(map[string]int{"--nodes": c.Nodes, "--size": c.Size, "--fanout": c.Fanout})
}

// Broadcast measures spreading one object to a group where the network is
// the limit, as between real machines: every node (a store and a stream
// server) runs in its own network namespace, joined to a bridge by a veth
// link rate-limited with tc in both directions. It times one transfer to
// one node, then a prefetch of another object to all nodes, and removes
// every namespace, link and process it made, whatever happens. Needs root
// and iproute2.
func Broadcast(ctx context.Context, cfg BroadcastConfig, w io.Writer) (map[string]any, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("plasma bench broadcast needs root (network namespaces and tc)")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found: apt-get install iproute2", tool)
		}
	}
	storeBin, err := binary(cfg.BinDir, "plasma-store-server")
	if err != nil {
		return nil, err
	}
	streamBin, err := binary(cfg.BinDir, "plasma-stream-server")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "psbcast")
	if err != nil {
		return nil, err
	}
	nw := &netns{prefix: fmt.Sprintf("psb%d", os.Getpid()%10000)}
	defer func() {
		nw.stop()
		os.RemoveAll(dir)
	}()
	if err := nw.bridge(); err != nil {
		return nil, err
	}
	total := cfg.Nodes + 1
	memory := strconv.Itoa(2*cfg.Size + 64<<20)
	for i := range total {
		if err := nw.add(i, cfg.Rate); err != nil {
			return nil, err
		}
		sock := filepath.Join(dir, fmt.Sprintf("n%d.sock", i))
		args := []string{"-s", sock, "-p", strconv.Itoa(stream.DefaultPort), "--bind", nw.ip(i), "--node-name", fmt.Sprintf("n%d", i),
			"--allow-unauthenticated", "--lease-ttl", "5s", "--log-level", "warn"}
		if i == 0 {
			args = append(args, "--etcd", "embedded", "--etcd-dir", filepath.Join(dir, "etcd"), "--etcd-listen", nw.ip(0)+":2379")
		} else {
			args = append(args, "--etcd", "http://"+nw.ip(0)+":2379", "--group", "bench")
		}
		if err := nw.run(i, storeBin, "-m", memory, "-s", sock, "--log-level", "warn"); err != nil {
			return nil, err
		}
		if err := waitUnix(sock, 30*time.Second); err != nil {
			return nil, err
		}
		if err := nw.run(i, streamBin, args...); err != nil {
			return nil, err
		}
		if err := waitStream(ctx, nw.addr(i)); err != nil {
			return nil, err
		}
	}
	origin, err := store.Connect(ctx, filepath.Join(dir, "n0.sock"))
	if err != nil {
		return nil, err
	}
	defer origin.Close()
	res := map[string]any{"nodes": cfg.Nodes, "size_bytes": cfg.Size, "rate": cfg.Rate}

	single, err := timeSingle(ctx, origin, nw, cfg.Size)
	if err != nil {
		return nil, err
	}
	bcast, failed, err := timeBroadcast(ctx, origin, nw, cfg, res)
	if err != nil {
		return nil, err
	}
	res["single_s"], res["broadcast_s"], res["broadcast_ratio"] = round(single), round(bcast), round(bcast/single)
	res["failed_nodes"] = failed
	// Verified against unverified over one such link: the bench pulls a
	// new object from n0 into n1's store (unix sockets cross namespaces).
	id, err := origin.Put(ctx, benchData(cfg.Size, 3), nil)
	if err != nil {
		return nil, err
	}
	pull, err := pullLarge(ctx, filepath.Join(dir, "n1.sock"), filepath.Join(dir, "n0.sock"), nw.addr(0), id, cfg.Size, 3)
	if err != nil {
		return nil, err
	}
	res["link_pull_GBps"], res["link_pull_unverified_GBps"] = round(pull.verified), round(pull.unverified)
	res["link_verified_ratio"] = round(pull.verified / pull.unverified)
	fmt.Fprintf(w, "plasma broadcast benchmark: %d MiB to %d nodes, each link %s each way\n", cfg.Size>>20, cfg.Nodes, cfg.Rate)
	fmt.Fprintf(w, "  %-40s %8.3f s\n", "one node (SYNC COPY)", single)
	fmt.Fprintf(w, "  %-40s %8.3f s  (ratio %.2f; a star from one source: %d)\n", "all nodes (prefetch group)", bcast, bcast/single, cfg.Nodes)
	if failed > 0 {
		fmt.Fprintf(w, "  %d nodes failed\n", failed)
	}
	fmt.Fprintf(w, "  %-40s %v to %v s\n", "  members done after", res["fastest_node_s"], res["slowest_node_s"])
	if v, ok := res["origin_sent_ratio"]; ok {
		fmt.Fprintf(w, "  %-40s %v × the object\n", "  the origin's link carried", v)
	}
	fmt.Fprintf(w, "  %-40s %8.3f GB/s, unverified %.3f GB/s (verified_ratio %.2f)\n", "PULL of one object over one link", pull.verified, pull.unverified, pull.verified/pull.unverified)
	return res, nil
}

func timeSingle(ctx context.Context, origin *store.Client, nw *netns, size int) (float64, error) {
	id, err := origin.Put(ctx, benchData(size, 1), nil)
	if err != nil {
		return 0, err
	}
	c, err := stream.Connect(ctx, nw.addr(1))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Sync(ctx, []stream.PeerRequest{{Kind: stream.Copy, From: nw.addr(0), Objects: []stream.ObjectID{id}}}); err != nil {
		return 0, fmt.Errorf("single copy: %w", err)
	}
	return time.Since(start).Seconds(), nil
}

func timeBroadcast(ctx context.Context, origin *store.Client, nw *netns, cfg BroadcastConfig, res map[string]any) (float64, int, error) {
	id, err := origin.Put(ctx, benchData(cfg.Size, 2), nil)
	if err != nil {
		return 0, 0, err
	}
	c, err := stream.Connect(ctx, nw.addr(0))
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	// Wait until the directory knows the object and every member.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		locs, err := c.Locate(ctx, id)
		nodes, nerr := c.Nodes(ctx)
		if err == nil && nerr == nil && len(locs[id]) > 0 && len(nodes) == cfg.Nodes+1 {
			break
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("the cluster did not register all nodes and the object in 20 s")
		}
	}
	sentBefore := nw.sent(0)
	start := time.Now()
	out, err := c.Prefetch(ctx, id, "bench", true, cfg.Fanout)
	elapsed := time.Since(start).Seconds()
	if sent := nw.sent(0); sent > 0 && sentBefore > 0 {
		res["origin_sent_ratio"] = round(float64(sent-sentBefore) / float64(cfg.Size))
	}
	failed := 0
	fastest, slowest := math.Inf(1), 0.0
	for _, o := range out {
		if !o.OK {
			failed++
		}
		fastest, slowest = min(fastest, o.Duration.Seconds()), max(slowest, o.Duration.Seconds())
	}
	res["fastest_node_s"], res["slowest_node_s"] = round(fastest), round(slowest)
	if len(out) != cfg.Nodes {
		return 0, 0, fmt.Errorf("prefetch reached %d of %d nodes: %v", len(out), cfg.Nodes, err)
	}
	return elapsed, failed, nil
}

func benchData(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 512 {
		b[i] = byte(i>>9) ^ seed
	}
	return b
}

func waitStream(ctx context.Context, addr string) error {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := stream.Connect(ctx, addr); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stream server at %s not answering", addr)
		}
	}
}

// netns builds and removes the benchmark's network: a bridge in the root
// namespace and, per node, a namespace with a veth link to it.
type netns struct {
	prefix string
	nodes  int
	procs  []*exec.Cmd
	made   []string // namespaces
	br     bool
}

func (n *netns) ip(i int) string { return fmt.Sprintf("10.77.%d.%d", n.subnet(), i+1) }
func (n *netns) addr(i int) string {
	return net.JoinHostPort(n.ip(i), strconv.Itoa(stream.DefaultPort))
}
func (n *netns) subnet() int { return 77 }

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (n *netns) bridge() error {
	br := n.prefix + "br"
	if err := sh("ip", "link", "add", br, "type", "bridge"); err != nil {
		return err
	}
	n.br = true
	if err := sh("ip", "addr", "add", fmt.Sprintf("10.77.%d.254/24", n.subnet()), "dev", br); err != nil {
		return err
	}
	return sh("ip", "link", "set", br, "up")
}

// add makes node i's namespace and its link, shaped to rate both ways.
func (n *netns) add(i int, rate string) error {
	ns, host, peer := fmt.Sprintf("%s-%d", n.prefix, i), fmt.Sprintf("%sh%d", n.prefix, i), fmt.Sprintf("%sp%d", n.prefix, i)
	steps := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", host, "type", "veth", "peer", "name", peer},
		{"ip", "link", "set", peer, "netns", ns},
		{"ip", "link", "set", host, "master", n.prefix + "br"},
		{"ip", "link", "set", host, "up"},
		{"ip", "-n", ns, "addr", "add", n.ip(i) + "/24", "dev", peer},
		{"ip", "-n", ns, "link", "set", peer, "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		// Egress of the node, and egress of the bridge port toward it (the
		// node's ingress): a full-duplex link of the given rate.
		{"ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", peer, "root", "tbf", "rate", rate, "burst", "256kb", "latency", "50ms"},
		{"tc", "qdisc", "add", "dev", host, "root", "tbf", "rate", rate, "burst", "256kb", "latency", "50ms"},
	}
	for j, s := range steps {
		if err := sh(s...); err != nil {
			return err
		}
		if j == 0 {
			n.made = append(n.made, ns)
		}
	}
	return nil
}

// sent is the bytes node i has sent on its link (the host end of its
// veth received them), or 0 if unknown.
func (n *netns) sent(i int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/sys/class/net/%sh%d/statistics/rx_bytes", n.prefix, i))
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v
}

// run starts a program inside node i's namespace.
func (n *netns) run(i int, bin string, args ...string) error {
	cmd := exec.Command("ip", append([]string{"netns", "exec", fmt.Sprintf("%s-%d", n.prefix, i), bin}, args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	n.procs = append(n.procs, cmd)
	return nil
}

func (n *netns) stop() {
	for i := len(n.procs) - 1; i >= 0; i-- {
		n.procs[i].Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { n.procs[i].Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			n.procs[i].Process.Kill()
			<-done
		}
	}
	for _, ns := range n.made {
		sh("ip", "netns", "del", ns) // removes the veth pair with it
	}
	if n.br {
		sh("ip", "link", "del", n.prefix+"br")
	}
}
