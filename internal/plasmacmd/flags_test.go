package plasmacmd

import (
	"fmt"
	"testing"

	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/internal/bench"
	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// The flags' defaults are the configs' (SetDefaults) and the shared
// constants: no default is written twice.
func TestFlagDefaults(t *testing.T) {
	if want := fmt.Sprintf("127.0.0.1:%d", stream.DefaultPort); stream.DefaultAddr != want {
		t.Errorf("stream.DefaultAddr %s, want %s", stream.DefaultAddr, want)
	}
	root := New()
	sub := func(path ...string) *cobra.Command {
		c, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var sc bench.StoreConfig
	sc.SetDefaults()
	var tc bench.StreamConfig
	tc.SetDefaults()
	var bc bench.BroadcastConfig
	bc.SetDefaults()
	var wc bench.SweepConfig
	wc.SetDefaults()
	for _, tt := range []struct {
		cmd  *cobra.Command
		flag string
		want any
	}{
		{root, "socket", store.DefaultSocket},
		{root, "address", stream.DefaultAddr},
		{sub("bench", "store"), "large", sc.LargeSize},
		{sub("bench", "store"), "rounds", sc.Rounds},
		{sub("bench", "store"), "gets", sc.GetIters},
		{sub("bench", "store"), "creates", sc.Creates},
		{sub("bench", "stream"), "large", tc.LargeSize},
		{sub("bench", "stream"), "small-count", tc.SmallCount},
		{sub("bench", "stream"), "small-size", tc.SmallSize},
		{sub("bench", "stream"), "rounds", tc.Rounds},
		{sub("bench", "broadcast"), "nodes", bc.Nodes},
		{sub("bench", "broadcast"), "size", bc.Size},
		{sub("bench", "broadcast"), "rate", bc.Rate},
		{sub("bench", "broadcast"), "fanout", bc.Fanout},
		{sub("bench", "sweep"), "max-size", wc.MaxSize},
		{sub("bench", "sweep"), "max-batch", wc.MaxBatch},
		{sub("bench", "sweep"), "max-rounds", wc.MaxRounds},
		{sub("bench", "sweep"), "broadcast-size", wc.BroadcastSize},
		{sub("keygen"), "output", trust.DefaultKeyFile},
	} {
		f := tt.cmd.Flags().Lookup(tt.flag)
		if f == nil {
			f = tt.cmd.PersistentFlags().Lookup(tt.flag)
		}
		if f == nil || f.DefValue != fmt.Sprint(tt.want) {
			t.Errorf("%s --%s: default %v, want %v", tt.cmd.CommandPath(), tt.flag, f, tt.want)
		}
	}
}
