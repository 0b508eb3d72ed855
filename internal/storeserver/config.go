package storeserver

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/plasmastream/plasmastream/internal/alloc"
	"github.com/plasmastream/plasmastream/store"
)

// Defaults of the store.
const (
	// DefaultDir is where plasma-store-server puts its arena file (a
	// tmpfs); Config's zero Dir means a memfd instead.
	DefaultDir              = "/dev/shm"
	DefaultEventQueue       = 1 << 16
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultWaitMemory       = 64 << 20
	// DefaultColdTimeout bounds each cold-tier operation: time for a few
	// GiB over a slow link, short enough that a hung tier is noticed.
	DefaultColdTimeout = 10 * time.Minute
)

// DefaultConfig is the configuration plasma-store-server runs with when
// given no flags but -m: SetDefaults' values plus the arena directory.
// Capacity has no default.
func DefaultConfig() Config {
	c := Config{Dir: DefaultDir}
	c.SetDefaults()
	return c
}

// SetDefaults fills every zero field that has a default. It is the one
// place where defaults are set; New calls it.
func (cfg *Config) SetDefaults() {
	if cfg.Socket == "" {
		cfg.Socket = store.DefaultSocket
	}
	if cfg.SocketMode == 0 {
		cfg.SocketMode = DefaultSocketMode
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.EventQueue == 0 {
		cfg.EventQueue = DefaultEventQueue
	}
	if cfg.MaxClients == 0 {
		cfg.MaxClients = DefaultMaxClients()
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.WaitMemory == 0 {
		cfg.WaitMemory = DefaultWaitMemory
	}
	if cfg.ColdTimeout == 0 {
		cfg.ColdTimeout = DefaultColdTimeout
	}
	cfg.Cold.SetDefaults()
}

// Validate reports the first bad value, naming its flag.
func (cfg *Config) Validate() error {
	switch {
	case cfg.Capacity < alloc.Align:
		return fmt.Errorf("a store of %d bytes holds nothing: objects are placed in %d-byte blocks; give -m at least %d", cfg.Capacity, alloc.Align, alloc.Align)
	case cfg.MaxClients < 0:
		return fmt.Errorf("--max-clients %d: give a positive number, or 0 for the default", cfg.MaxClients)
	case cfg.EventQueue < 0:
		return fmt.Errorf("event queue of %d events: give a positive number", cfg.EventQueue)
	case cfg.SocketMode&^0o777 != 0:
		return fmt.Errorf("--socket-mode %#o: give permission bits only, such as 0600 or 0660", cfg.SocketMode)
	case cfg.SocketMode&0o600 != 0o600:
		return fmt.Errorf("--socket-mode %#o would lock the store's own user out of its socket: keep the owner's read and write (6 as the first digit), e.g. 0660", cfg.SocketMode)
	case cfg.ColdTimeout < 0:
		return fmt.Errorf("--cold-timeout %v: a duration cannot be negative", cfg.ColdTimeout)
	case cfg.ColdShared && cfg.Cold.URL == "":
		return fmt.Errorf("--cold-shared needs a cold tier: give -e s3://bucket/prefix")
	case cfg.RestoreOnStart && cfg.Cold.URL == "":
		return fmt.Errorf("--restore-on-start needs a cold tier to restore from: give -e file:///dir or -e s3://bucket/prefix")
	case cfg.HandshakeTimeout < 0:
		return fmt.Errorf("handshake timeout %v: a duration cannot be negative", cfg.HandshakeTimeout)
	}
	return nil
}
