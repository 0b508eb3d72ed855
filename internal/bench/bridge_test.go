package bench_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/bench"
	"github.com/plasmastream/plasmastream/internal/testutil"
)

// TestBridgeBench runs plasma bench bridge on a small blob and checks the
// shape of its result only: every figure there and positive. No timing
// is asserted.
func TestBridgeBench(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var table bytes.Buffer
	res, err := bench.Bridge(ctx, bench.BridgeConfig{Size: 8 << 20, Rounds: 2, BinDir: testutil.Binaries(t)}, &table)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"copy_GBps", "replicate_two_GBps", "replicate_ratio", "replicate_cpu_s_per_GB", "import_GBps", "cp_shm_GBps", "import_ratio", "import_cpu_s_per_GB"} {
		if f, ok := res[k].(float64); !ok || f < 0 || (f == 0 && !strings.Contains(k, "cpu")) {
			t.Errorf("%s = %v; want a positive number (result %v)", k, res[k], res)
		}
	}
	if !strings.Contains(table.String(), "replicate_ratio") {
		t.Errorf("table:\n%s", table.String())
	}
}
