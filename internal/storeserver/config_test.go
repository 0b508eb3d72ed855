package storeserver_test

import (
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  storeserver.Config
		want string // "" valid
	}{
		{"smallest store", storeserver.Config{Capacity: 64}, ""},
		{"no capacity", storeserver.Config{}, "holds nothing"},
		{"below one block", storeserver.Config{Capacity: 63}, "give -m at least 64"},
		{"negative clients", storeserver.Config{Capacity: 1 << 20, MaxClients: -1}, "--max-clients -1"},
		{"negative event queue", storeserver.Config{Capacity: 1 << 20, EventQueue: -1}, "event queue"},
		{"negative handshake", storeserver.Config{Capacity: 1 << 20, HandshakeTimeout: -time.Second}, "handshake timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SetDefaults()
			testutil.WantError(t, tt.cfg.Validate(), tt.want)
		})
	}
}

func TestConfigSetDefaults(t *testing.T) {
	var c storeserver.Config
	c.SetDefaults()
	if c.Socket != store.DefaultSocket || c.Dir != "" || c.MaxClients != storeserver.DefaultMaxClients() ||
		c.WaitMemory != storeserver.DefaultWaitMemory || c.HandshakeTimeout != storeserver.DefaultHandshakeTimeout || c.Logger == nil {
		t.Fatalf("zero Config after SetDefaults: %+v", c)
	}
	if d := storeserver.DefaultConfig(); d.Dir != storeserver.DefaultDir {
		t.Fatalf("DefaultConfig's directory %q, want %q", d.Dir, storeserver.DefaultDir)
	}
}
