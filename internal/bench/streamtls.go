package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/stream"
	"golang.org/x/sys/unix"
)

// startTLSNodes starts two nodes, "ta" and "tb", that run mutual TLS: each
// has its own key, and one trust file in dir lists both nodes and the
// benchmark's client key, all with role admin. The client key never
// leaves this process.
func startTLSNodes(ctx context.Context, binDir, dir, memory string) ([]*node, error) {
	client, err := trust.Generate()
	if err != nil {
		return nil, err
	}
	names := []string{"ta", "tb"}
	ids := make([]trust.Identity, len(names))
	var list bytes.Buffer
	fmt.Fprintf(&list, "%s bench-client admin\n", client.Public())
	for i, name := range names {
		if ids[i], err = trust.Generate(); err != nil {
			return nil, err
		}
		if err := trust.WriteKey(filepath.Join(dir, name+".key"), ids[i], false); err != nil {
			return nil, err
		}
		fmt.Fprintf(&list, "%s %s admin\n", ids[i].Public(), name)
	}
	trustFile := filepath.Join(dir, "trusted-keys")
	if err := os.WriteFile(trustFile, list.Bytes(), 0o600); err != nil {
		return nil, err
	}
	var nodes []*node
	for i, name := range names {
		args := []string{"-k", filepath.Join(dir, name+".key"), "--trusted-keys", trustFile}
		opts := []stream.Option{stream.WithKey(client), stream.WithServerKey(ids[i].Public())}
		n, err := startNode(ctx, binDir, filepath.Join(dir, name+".sock"), name, memory, args, opts)
		if err != nil {
			return nodes, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// which is 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// serversCPU is the CPU time, user and system, the stream servers of
// nodes have used so far; 0 for a process it cannot read.
func serversCPU(nodes ...*node) time.Duration {
	var total time.Duration
	for _, n := range nodes {
		total += processCPU(n.serverPID())
	}
	return total
}

// processCPU is the CPU time, user and system, of all threads of process
// pid: the kernel's CPU clock of the process (clock_gettime, nanoseconds:
// a small object's COPY takes less than one tick), else utime and stime
// from /proc/PID/stat, in ticks.
func processCPU(pid int) time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(processClock(pid), &ts) == nil {
		return time.Duration(ts.Nano())
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: the fields
	// counted from state (field 3) start after its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(string(f[11]), 10, 64) // field 14
	stime, _ := strconv.ParseInt(string(f[12]), 10, 64) // field 15
	return time.Duration(utime+stime) * clockTick
}

// processClock is clock_getcpuclockid(pid), the clock of the CPU time of
// every thread of pid: Linux's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED).
func processClock(pid int) int32 { return int32(^pid<<3 | 2) }
