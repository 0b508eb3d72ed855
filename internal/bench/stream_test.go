package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/bench"
	"github.com/plasmastream/plasmastream/internal/testutil"
)

// TestStreamBenchTLS runs the stream benchmark on small objects, with and
// without --tls, and checks only the shape of its result: with TLS the
// TLS keys are there and positive, without they are absent. No timing
// is asserted.
func TestStreamBenchTLS(t *testing.T) {
	bin := testutil.Binaries(t)
	tlsKeys := []string{"tls_copy_GBps", "tls_ratio", "tls_cpu_s_per_GB", "plain_cpu_s_per_GB"}
	for _, withTLS := range []bool{true, false} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cfg := bench.StreamConfig{LargeSize: 8 << 20, SmallCount: 100, Rounds: 1, IperfSecs: 1, BinDir: bin, TLS: withTLS}
		var table bytes.Buffer
		res, err := bench.Stream(ctx, cfg, &table)
		if err != nil {
			t.Fatalf("bench stream (tls %v): %v", withTLS, err)
		}
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		for _, k := range append([]string{"copy_GBps"}, tlsKeys...) {
			v, ok := got[k]
			if k == "copy_GBps" || withTLS {
				if f, isNum := v.(float64); !ok || !isNum || f <= 0 {
					t.Errorf("tls %v: %s = %v (present %v), want a positive number in %s", withTLS, k, v, ok, b)
				}
			} else if ok {
				t.Errorf("without --tls the result has %s = %v: %s", k, v, b)
			}
		}
		if withTLS != strings.Contains(table.String(), "mutual TLS") {
			t.Errorf("tls %v: table:\n%s", withTLS, table.String())
		}
	}
}

// TestStreamBenchPeers runs the stream benchmark with --peers on a small
// object, which builds and runs the Arrow Flight peer (bench/flight, its
// own Go module), and checks that every CPU and Flight figure is there
// and positive. No timing is asserted.
func TestStreamBenchPeers(t *testing.T) {
	bin := testutil.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg := bench.StreamConfig{LargeSize: 8 << 20, SmallCount: 10, Rounds: 1, IperfSecs: 1, BinDir: bin, Peers: true}
	var table bytes.Buffer
	res, err := bench.Stream(ctx, cfg, &table)
	if err != nil {
		t.Fatalf("bench stream --peers: %v", err)
	}
	for _, k := range []string{"copy_cpu_s_per_GB", "iperf3_cpu_s_per_GB", "copy_cpu_ratio",
		"flight_GBps", "flight_tuned_GBps", "flight_cpu_s_per_GB", "flight_tuned_cpu_s_per_GB", "flight_ratio"} {
		if f, ok := res[k].(float64); !ok || f <= 0 {
			t.Errorf("%s = %v, want a positive number; result %v", k, res[k], res)
		}
	}
	if !strings.Contains(table.String(), "Arrow Flight DoGet, tuned") {
		t.Errorf("table without the Flight peer:\n%s", table.String())
	}
}
