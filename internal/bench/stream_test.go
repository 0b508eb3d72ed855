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
