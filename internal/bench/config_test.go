package bench

import (
	"testing"

	"github.com/plasmastream/plasmastream/internal/testutil"
)

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  interface {
			SetDefaults()
			Validate() error
		}
		want string // "" valid
	}{
		{"store defaults", &StoreConfig{}, ""},
		{"store negative size", &StoreConfig{LargeSize: -1}, "--large -1"},
		{"store negative gets", &StoreConfig{GetIters: -5}, "--gets -5"},
		{"stream defaults", &StreamConfig{}, ""},
		{"stream negative count", &StreamConfig{SmallCount: -1}, "--small-count -1"},
		{"stream negative rounds", &StreamConfig{Rounds: -3}, "--rounds -3"},
		{"broadcast defaults", &BroadcastConfig{}, ""},
		{"broadcast server fanout", &BroadcastConfig{Fanout: 0}, ""},
		{"broadcast negative fanout", &BroadcastConfig{Fanout: -1}, "--fanout -1"},
		{"broadcast negative nodes", &BroadcastConfig{Nodes: -2}, "--nodes -2"},
		{"bridge defaults", &BridgeConfig{}, ""},
		{"bridge negative size", &BridgeConfig{Size: -1}, "--size -1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SetDefaults()
			testutil.WantError(t, tt.cfg.Validate(), tt.want)
		})
	}
}

func TestSetDefaultsKeepsValues(t *testing.T) {
	c := StreamConfig{LargeSize: 5}
	c.SetDefaults()
	if c.LargeSize != 5 || c.SmallCount != 10000 {
		t.Fatalf("after SetDefaults: %+v", c)
	}
}
