package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// parseIperf3 reads an iperf3 -J report: the rate received, and the CPU
// of both ends per GB from iperf3's own accounting. Each end reports its
// process's user+system time (getrusage) over the test as a percentage of
// the test's wall time, so percent/100 × seconds is CPU seconds measured
// over exactly the bytes moved, without process start-up or the client's
// connection retries.
func parseIperf3(out []byte) (copyRate, error) {
	var r struct {
		End struct {
			SumSent struct {
				Seconds float64 `json:"seconds"`
			} `json:"sum_sent"`
			SumReceived struct {
				Bytes         float64 `json:"bytes"`
				Seconds       float64 `json:"seconds"`
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			CPU struct {
				Host   float64 `json:"host_total"`
				Remote float64 `json:"remote_total"`
			} `json:"cpu_utilization_percent"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return copyRate{}, fmt.Errorf("iperf3 output: %w", err)
	}
	e := r.End
	if e.SumReceived.BitsPerSecond <= 0 || e.SumReceived.Bytes <= 0 {
		return copyRate{}, errors.New("iperf3 output: no bytes received")
	}
	cpu := (e.CPU.Host*e.SumSent.Seconds + e.CPU.Remote*e.SumReceived.Seconds) / 100
	return copyRate{rate: e.SumReceived.BitsPerSecond / 8 / 1e9, cpu: cpu / (e.SumReceived.Bytes / 1e9)}, nil
}

// flightResult is what the bench/flight program prints.
type flightResult struct {
	Default, Tuned struct {
		GBps     float64 `json:"GBps"`
		CPUPerGB float64 `json:"cpu_s_per_GB"`
	}
	Tuning string `json:"tuning"`
}

// flightPeer builds and runs the Arrow Flight peer (bench/flight) on the
// large object's size and adds its figures to res. flight_ratio is ours,
// the verified COPY's GB/s, over the faster of Flight's two
// configurations, unverified.
func flightPeer(ctx context.Context, cfg StreamConfig, ours float64, res map[string]any) error {
	dir, err := os.MkdirTemp("", "psflight")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := buildFlight(ctx, cfg.FlightSrc, dir)
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-size", strconv.Itoa(cfg.LargeSize), "-rounds", strconv.Itoa(cfg.Rounds))
	cmd.Stderr = io.MultiWriter(&stderr, os.Stderr)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("the Arrow Flight peer (%s): %v: %s", bin, err, bytes.TrimSpace(stderr.Bytes()))
	}
	var r flightResult
	if err := json.Unmarshal(out, &r); err != nil || r.Default.GBps <= 0 || r.Tuned.GBps <= 0 {
		return fmt.Errorf("the Arrow Flight peer printed %q, not its result (%v)", out, err)
	}
	res["flight_GBps"], res["flight_cpu_s_per_GB"] = r.Default.GBps, r.Default.CPUPerGB
	res["flight_tuned_GBps"], res["flight_tuned_cpu_s_per_GB"] = r.Tuned.GBps, r.Tuned.CPUPerGB
	res["flight_tuning"] = r.Tuning
	res["flight_ratio"] = round(ours / max(r.Default.GBps, r.Tuned.GBps))
	return nil
}

// buildFlight builds the separate Go module bench/flight into dir and
// returns the program's path. go build's cache makes a rebuild a link;
// a directory of its own per run means that no run replaces the program
// another is running.
func buildFlight(ctx context.Context, src, dir string) (string, error) {
	if src == "" {
		var err error
		if src, err = findFlightSrc(); err != nil {
			return "", err
		}
	}
	if !fileExists(filepath.Join(src, "go.mod")) {
		return "", fmt.Errorf("%s holds no go.mod: --flight-src must name the bench/flight directory of the source tree", src)
	}
	if _, err := exec.LookPath("go"); err != nil {
		return "", errors.New("--peers builds bench/flight with the go command, which is not on PATH")
	}
	bin := filepath.Join(dir, "flight")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the Arrow Flight peer in %s: %v\n%s", src, err, out)
	}
	return bin, nil
}

// findFlightSrc looks for bench/flight in the working directory, this
// executable's directory and their parents.
func findFlightSrc() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			if p := filepath.Join(dir, "bench", "flight"); fileExists(filepath.Join(p, "go.mod")) {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("--peers needs the source of bench/flight: run from the source tree or pass --flight-src DIR")
}

// printCPUAndPeers adds the CPU per GB and the Flight peer to the table.
func printCPUAndPeers(w io.Writer, r map[string]any) {
	fmt.Fprintf(w, "  %-44s %10v s/GB\n", "CPU of both stream servers, SYNC COPY", r["copy_cpu_s_per_GB"])
	if v, ok := r["iperf3_cpu_s_per_GB"]; ok {
		fmt.Fprintf(w, "  %-44s %10v s/GB  (copy_cpu_ratio %v)\n", "CPU of both iperf3 ends (its own report)", v, r["copy_cpu_ratio"])
	}
	if v, ok := r["flight_GBps"]; ok {
		fmt.Fprintf(w, "  %-44s %10v GB/s  at %v s/GB CPU\n", "Arrow Flight DoGet, gRPC defaults", v, r["flight_cpu_s_per_GB"])
		fmt.Fprintf(w, "  %-44s %10v GB/s  at %v s/GB CPU  (flight_ratio %v)\n", "Arrow Flight DoGet, tuned", r["flight_tuned_GBps"], r["flight_tuned_cpu_s_per_GB"], r["flight_ratio"])
		fmt.Fprintf(w, "    tuned: %v\n", r["flight_tuning"])
	}
}
