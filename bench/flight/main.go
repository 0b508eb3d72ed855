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
)

func main() {
	size := flag.Int("size", 1<<30, "bytes moved per round")
	rounds := flag.Int("rounds", 3, "timed DoGet calls per configuration (median)")
	serve := flag.Bool("serve", false, "run as the Flight server (used by this program itself)")
	tuned := flag.Bool("tuned", false, "with -serve: the tuned configuration")
	flag.Parse()
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

// runClient times each configuration against its own server process and
// prints {"default": result, "tuned": result, "tuning": "..."}.
func runClient(size, rounds int) error {
	if size <= 0 || rounds <= 0 {
		return fmt.Errorf("-size and -rounds must be positive")
	}
	dst := make([]byte, size)
	for i := 0; i < len(dst); i += 4096 { // touched: no page faults in the timed part
		dst[i] = 1
	}
	out := map[string]any{"tuning": profileOf(true).describe()}
	for _, tuned := range []bool{false, true} {
		r, err := measure(dst, rounds, profileOf(tuned))
		if err != nil {
			return err
		}
		out[map[bool]string{false: "default", true: "tuned"}[tuned]] = r
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// measure starts a server with profile p and times rounds DoGets into dst.
func measure(dst []byte, rounds int, p profile) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.Command(self, "-serve", "-size", strconv.Itoa(len(dst)), "-tuned="+strconv.FormatBool(p.tuned))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return result{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return result{}, fmt.Errorf("flight server did not start: %w", err)
	}
	client, err := flight.NewClientWithMiddleware(strings.TrimSpace(addr), nil, nil, p.dialOptions()...)
	if err != nil {
		return result{}, err
	}
	defer client.Close()
	if err := doGet(client, dst); err != nil { // warm-up: connection, windows, pools
		return result{}, err
	}
	var times []time.Duration
	var cpu time.Duration
	for range rounds {
		cpuStart := selfCPU() + processCPU(cmd.Process.Pid)
		start := time.Now()
		if err := doGet(client, dst); err != nil {
			return result{}, err
		}
		times = append(times, time.Since(start))
		cpu += selfCPU() + processCPU(cmd.Process.Pid) - cpuStart
	}
	slices.Sort(times)
	gb := float64(len(dst)) / 1e9
	return result{
		GBps:      round(gb / times[len(times)/2].Seconds()),
		CPUPerGB:  round(cpu.Seconds() / gb / float64(rounds)),
		BatchSize: p.batch,
	}, nil
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

// processCPU reads utime and stime of process pid from /proc.
func processCPU(pid int) time.Duration {
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

