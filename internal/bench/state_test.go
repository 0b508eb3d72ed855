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

// TestStateBench runs the state streaming benchmark small and checks it
// reports every figure of issue 13: changes/s through each streamer
// (files with fsync on and off, NATS) and streaming_put_ratio from the
// create+seal rates of a node with every streamer and one with none, in
// one run. No timing is asserted.
func TestStateBench(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var table bytes.Buffer
	res, err := bench.State(ctx, bench.StateConfig{Changes: 2000, Creates: 300, Rounds: 2, BinDir: testutil.Binaries(t)}, &table)
	if err != nil {
		t.Fatalf("bench state: %v\n%s", err, table.String())
	}
	for _, k := range []string{"file_fsync_on_changes_per_s", "file_fsync_off_changes_per_s", "nats_changes_per_s", "put_per_s_streaming", "put_per_s_none"} {
		if v, ok := res[k].(int); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, res[k])
		}
	}
	if v, ok := res["streaming_put_ratio"].(float64); !ok || v <= 0 {
		t.Errorf("streaming_put_ratio = %v, want a positive number", res["streaming_put_ratio"])
	}
	if !strings.Contains(table.String(), "streaming_put_ratio") {
		t.Errorf("the table lacks streaming_put_ratio:\n%s", table.String())
	}
	t.Logf("\n%s", table.String())
}
