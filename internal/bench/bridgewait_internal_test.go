package bench

import (
	"context"
	"testing"
	"time"
)

// A round of the bridge benchmark ends when both subscribers have
// reported its own subject: a late report of the round before, a report
// of another node and a repeat do not end it (two such reports once
// ended a round early, and its deletes left a subscriber retrying).
func TestAwaitReplicatedCountsOnlyThisRound(t *testing.T) {
	reports := make(chan [2]string, 8)
	for _, r := range [][2]string{{"bench.r0", "b2"}, {"bench.r1", "b1"}, {"bench.r1", "b1"}, {"bench.r1", "a"}} {
		reports <- r
	}
	ctx := context.Background()
	if err := awaitReplicated(ctx, reports, "bench.r1", 100*time.Millisecond, "b1", "b2"); err == nil {
		t.Fatal("the round ended without b2's report of bench.r1")
	}
	reports <- [2]string{"bench.r1", "b2"}
	if err := awaitReplicated(ctx, reports, "bench.r1", 10*time.Second, "b2"); err != nil {
		t.Fatal(err)
	}
}
