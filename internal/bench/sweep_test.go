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

// The sweep prints one JSON object per point, sizes and batches ×4, each
// with a positive figure. No timing is asserted.
func TestSweepShape(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := bench.SweepConfig{MinSize: 1 << 10, MaxSize: 16 << 10, MaxBatch: 16, MaxRounds: 20, Nodes: []int{}, BinDir: testutil.Binaries(t)}
	var out bytes.Buffer
	if err := bench.Sweep(ctx, cfg, &out); err != nil {
		t.Fatal(err)
	}
	var sizes, batches []float64
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var p map[string]any
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		switch p["sweep"] {
		case "size":
			if gbps, _ := p["GBps"].(float64); gbps <= 0 {
				t.Errorf("no throughput in %s", line)
			}
			sizes = append(sizes, p["bytes"].(float64))
		case "batch":
			if r, _ := p["objects_per_s"].(float64); r <= 0 {
				t.Errorf("no rate in %s", line)
			}
			batches = append(batches, p["objects"].(float64))
		default:
			t.Errorf("unexpected line %s", line)
		}
	}
	if len(sizes) != 3 || sizes[2] != 16<<10 || len(batches) != 3 || batches[2] != 16 {
		t.Fatalf("sizes %v, batches %v; want 1, 4, 16 KiB and 1, 4, 16 objects:\n%s", sizes, batches, out.String())
	}
}

// --huge's engine on a small object: the copy's digest is checked and
// every figure is there.
func TestHugeShape(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var table bytes.Buffer
	res, err := bench.Huge(ctx, 8<<20+12345, testutil.Binaries(t), &table)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"huge_copy_GBps", "huge_pull_GBps", "huge_pull_unverified_GBps", "huge_put_and_hash_s"} {
		if f, ok := res[k].(float64); !ok || f <= 0 {
			t.Errorf("%s = %v, want a positive number: %v", k, res[k], res)
		}
	}
	if !strings.Contains(table.String(), "digest checked") {
		t.Errorf("table:\n%s", table.String())
	}
}
