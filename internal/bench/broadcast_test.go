package bench_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/bench"
	"github.com/plasmastream/plasmastream/internal/testutil"
)

// TestBroadcastBench runs the broadcast benchmark small (three members,
// each in its own network namespace behind a shaped link: it needs root,
// as CI runs) and checks what it reports: every member got the object,
// and the swarm sent about one copy over the origin's link, not one per
// member as a star would. No timing is asserted.
func TestBroadcastBench(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var table bytes.Buffer
	res, err := bench.Broadcast(ctx, bench.BroadcastConfig{Nodes: 3, Size: 8 << 20, Rate: "1gbit", BinDir: testutil.Binaries(t)}, &table)
	if err != nil {
		t.Fatalf("bench broadcast: %v\n%s", err, table.String())
	}
	if res["failed_nodes"] != 0 {
		t.Errorf("failed_nodes %v, want 0", res["failed_nodes"])
	}
	for _, k := range []string{"single_s", "broadcast_s", "fastest_node_s", "slowest_node_s"} {
		if v, ok := res[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, res[k])
		}
	}
	// 3 members: a star would carry 3 copies over the origin's link.
	if v, ok := res["origin_sent_ratio"].(float64); !ok || v < 0.95 || v > 1.6 {
		t.Errorf("the origin's link carried %v × the object, want about one copy", res["origin_sent_ratio"])
	}
	t.Logf("\n%s", table.String())
}
