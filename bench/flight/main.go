// Command flight is the Apache Arrow Flight peer of `plasma bench stream
// --peers`: it moves size bytes from a Flight server process to this one
// with DoGet, into memory allocated before the clock starts, and prints one
// JSON line with the throughput and the CPU both processes spent.
//
// It is a separate Go module so that the product does not depend on
// Arrow. Each configuration (gRPC defaults, then tuned) gets its own
// server process, started as this program with -serve; the server lives
// until its stdin closes, so it dies with its parent.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sys/unix"
)

func main() {
	size := flag.Int("size", 1<<30, "bytes moved per round")
	rounds := flag.Int("rounds", 3, "timed DoGet calls per configuration (median)")
	serve := flag.Bool("serve", false, "run as the Flight server (used by this program itself)")
	tuned := flag.Bool("tuned", false, "with -serve: the tuned configuration")
	t := profileOf(true)
	flag.IntVar(&t.batch, "batch", t.batch, "tuned: payload bytes per record batch")
	flag.Func("window", "tuned: static flow-control windows, bytes (default 64 MiB)", func(v string) error {
		n, err := strconv.ParseInt(v, 10, 32)
		t.window = int32(n)
		return err
	})
	flag.IntVar(&t.buffer, "buffer", t.buffer, "tuned: transport read/write buffer bytes")
	flag.BoolVar(&t.rawPool, "raw-pool", t.rawPool, "tuned: a buffer pool that does not zero")
	flag.Parse()
	tunedProfile = t
	var err error
	if *serve {
		err = runServer(*size, profileOf(*tuned))
	} else {
		err = runClient(*size, *rounds)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flight bench:", err)
		os.Exit(1)
	}
}

// result is one configuration's figures.
type result struct {
	GBps      float64 `json:"GBps"`
	CPUPerGB  float64 `json:"cpu_s_per_GB"` // server and client processes together
	BatchSize int     `json:"batch_bytes"`
}

// runClient times both configurations, each against its own server
// process, rounds alternating so that both see the same machine, and
// prints {"default": result, "tuned": result, "tuning": "..."}.
func runClient(size, rounds int) error {
	if size <= 0 || rounds <= 0 {
		return fmt.Errorf("-size and -rounds must be positive")
	}
	dst := make([]byte, size)
	for i := 0; i < len(dst); i += 4096 { // touched: no page faults in the timed part
		dst[i] = 1
	}
	var peers [2]*peer
	defer func() {
		for _, p := range peers {
			if p != nil {
				p.close()
			}
		}
	}()
	for i, tuned := range []bool{false, true} {
		var err error
		if peers[i], err = startPeer(profileOf(tuned), size); err != nil {
			return err
		}
		if err := doGet(peers[i].client, dst); err != nil { // warm-up: connection, windows, pools
			return err
		}
	}
	for range rounds {
		for _, p := range peers {
			if err := p.timedGet(dst); err != nil {
				return err
			}
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"default": peers[0].result(size, rounds), "tuned": peers[1].result(size, rounds),
		"tuning": profileOf(true).describe()})
}

// peer is a Flight server process and a client of it, with its timings.
type peer struct {
	prof   profile
	cmd    *exec.Cmd
	stdin  io.Closer
	client flight.Client
	times  []time.Duration
	cpu    time.Duration // of both processes over the timed calls
}

// startPeer starts a server with profile p serving size bytes and
// connects to it.
func startPeer(p profile, size int) (*peer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve", "-size", strconv.Itoa(size), "-tuned="+strconv.FormatBool(p.tuned),
		"-batch", strconv.Itoa(p.batch), "-window", strconv.Itoa(int(p.window)), "-buffer", strconv.Itoa(p.buffer), "-raw-pool="+strconv.FormatBool(p.rawPool))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pr := &peer{prof: p, cmd: cmd, stdin: stdin}
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		pr.close()
		return nil, fmt.Errorf("flight server did not start: %w", err)
	}
	if pr.client, err = flight.NewClientWithMiddleware(strings.TrimSpace(addr), nil, nil, p.dialOptions()...); err != nil {
		pr.close()
		return nil, err
	}
	return pr, nil
}

func (p *peer) close() {
	if p.client != nil {
		p.client.Close()
	}
	p.stdin.Close() // the server exits when its stdin closes
	p.cmd.Wait()
}

// timedGet is one DoGet into dst, timed, with the CPU of both processes.
func (p *peer) timedGet(dst []byte) error {
	cpuStart := selfCPU() + processCPU(p.cmd.Process.Pid)
	start := time.Now()
	if err := doGet(p.client, dst); err != nil {
		return err
	}
	p.times = append(p.times, time.Since(start))
	p.cpu += selfCPU() + processCPU(p.cmd.Process.Pid) - cpuStart
	return nil
}

// result is the median rate and the mean CPU per GB.
func (p *peer) result(size, rounds int) result {
	slices.Sort(p.times)
	gb := float64(size) / 1e9
	return result{
		GBps:      round(gb / p.times[len(p.times)/2].Seconds()),
		CPUPerGB:  round(p.cpu.Seconds() / gb / float64(rounds)),
		BatchSize: p.prof.batch,
	}
}

// doGet fetches the whole payload and copies every batch's bytes to its
// place in dst: the copy a receiver that keeps the data must make.
func doGet(client flight.Client, dst []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	stream, err := client.DoGet(ctx, &flight.Ticket{Ticket: []byte("payload")})
	if err != nil {
		return err
	}
	rdr, err := flight.NewRecordReader(stream)
	if err != nil {
		return err
	}
	defer rdr.Release()
	off := 0
	for rdr.Next() {
		col := rdr.RecordBatch().Column(0).Data().Buffers()[1].Bytes()
		if off+len(col) > len(dst) {
			return fmt.Errorf("server sent more than %d bytes", len(dst))
		}
		off += copy(dst[off:], col)
	}
	if err := rdr.Err(); err != nil && err != io.EOF {
		return err
	}
	if off != len(dst) {
		return fmt.Errorf("received %d bytes of %d", off, len(dst))
	}
	return nil
}

// payloadServer serves its payload, as record batches of one uint8
// column sliced from it without copying, to every DoGet.
type payloadServer struct {
	flight.BaseFlightServer
	schema  *arrow.Schema
	batches []arrow.RecordBatch
}

func (s *payloadServer) DoGet(_ *flight.Ticket, fs flight.FlightService_DoGetServer) error {
	w := flight.NewRecordWriter(fs, ipc.WithSchema(s.schema))
	defer w.Close()
	for _, b := range s.batches {
		if err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func runServer(size int, p profile) error {
	data := make([]byte, size)
	for i := 0; i < len(data); i += 4096 {
		data[i] = byte(i >> 12)
	}
	s := &payloadServer{schema: arrow.NewSchema([]arrow.Field{{Name: "data", Type: arrow.PrimitiveTypes.Uint8}}, nil)}
	for off := 0; off < size; off += p.batch {
		chunk := data[off:min(off+p.batch, size)]
		d := array.NewData(arrow.PrimitiveTypes.Uint8, len(chunk), []*memory.Buffer{nil, memory.NewBufferBytes(chunk)}, nil, 0, 0)
		col := array.MakeFromData(d)
		s.batches = append(s.batches, array.NewRecordBatch(s.schema, []arrow.Array{col}, int64(len(chunk))))
	}
	srv := flight.NewServerWithMiddleware(nil, p.serverOptions()...)
	if err := srv.Init("127.0.0.1:0"); err != nil {
		return err
	}
	srv.RegisterFlightService(s)
	go func() { io.Copy(io.Discard, os.Stdin); srv.Shutdown() }()
	fmt.Println(srv.Addr().String())
	return srv.Serve()
}

// selfCPU is this process's user and system CPU time.
func selfCPU() time.Duration { return processCPU(os.Getpid()) }

// processCPU is the CPU time, user and system, of all threads of process
// pid: clock_gettime on its CPU clock (MAKE_PROCESS_CPUCLOCK(pid,
// CPUCLOCK_SCHED)), nanoseconds, else utime and stime from /proc, ticks.
func processCPU(pid int) time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(int32(^pid<<3|2), &ts) == nil {
		return time.Duration(ts.Nano())
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces: count fields after its last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

func round(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
