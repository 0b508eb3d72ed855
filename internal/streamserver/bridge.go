package streamserver

import (
	"context"
	"fmt"
	"time"

	"github.com/plasmastream/plasmastream/internal/bridge"
	"github.com/plasmastream/plasmastream/internal/natsconn"
	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/store"
)

// BridgeConfig is the NATS bridge's part of the configuration (package
// bridge; docs/nats-bridge.md). The bridge runs whenever the server has a
// NATS (--nats).
type BridgeConfig struct {
	Prefix     string   // --nats-prefix; "": bridge.DefaultPrefix
	ImportDirs []string // --import-dir; none: imports read any file the server can
	Publish    []string // publish.subjects: subjects it may announce on; none: any
	// Subscribe are the subjects it replicates (subscribe.subjects), each
	// "SUBJECT" or "SUBJECT KEY[,KEY...]" (only those publishers).
	Subscribe []string
	// Keep is how long the NATS's JetStream keeps announcements for
	// nodes that were away (--announce-keep); 0: not kept (DefaultConfig
	// sets bridge.DefaultKeep).
	Keep time.Duration
}

// connectNATS connects the server's NATS (--nats), shared by state
// streaming and the bridge; nil without --nats.
func (s *Server) connectNATS(ctx context.Context) (*natsconn.Conn, error) {
	if s.cfg.NATS.Servers == "" {
		return nil, nil
	}
	ncfg := s.cfg.NATS
	ncfg.Name, ncfg.Logger = s.cfg.NodeName, s.log
	return natsconn.Connect(ctx, ncfg)
}

// closeNATS closes the server's NATS (and stops its embedded server).
func (s *Server) closeNATS() {
	if s.nats != nil {
		s.nats.Close()
	}
}

// startBridge starts the NATS bridge on the server's NATS, if it has one.
func (s *Server) startBridge() (*bridge.Bridge, error) {
	if s.nats == nil {
		return nil, nil
	}
	bc := s.cfg.Bridge
	keep := bc.Keep
	if keep == 0 {
		keep = -1 // bridge.Config's "not kept"
	}
	cfg := bridge.Config{Prefix: bc.Prefix, Keep: keep, Node: s.cfg.NodeName, Addr: s.advertise(), ImportDirs: bc.ImportDirs, Publish: bc.Publish,
		Store: func() (*store.Client, func(), error) {
			sc, err := s.useStore()
			if err != nil {
				return nil, nil, err
			}
			return sc.st, sc.release, nil
		},
		Fetch: s.node.FetchFrom, Holders: s.node.Holders, Concurrency: s.cfg.SyncConcurrency, Registerer: s.metrics.reg, Logger: s.log}
	for _, sub := range bc.Subscribe {
		p, err := bridge.ParseSubscription(sub)
		if err != nil {
			return nil, fmt.Errorf("subscribe.subjects: %w", err)
		}
		cfg.Subscribe = append(cfg.Subscribe, p)
	}
	if s.cfg.PrivateKey != "" {
		id, err := trust.LoadKey(s.cfg.PrivateKey)
		if err != nil {
			return nil, err
		}
		cfg.Identity = &id
		cfg.Trusted = func(k trust.PublicKey) bool { _, ok := s.trust.Lookup(k); return ok }
	}
	return bridge.New(cfg, s.nats.NC)
}

// NATSURL is the client URL of the server's NATS (its embedded server's,
// or the configured URLs); "" without --nats.
func (s *Server) NATSURL() string {
	if s.nats == nil {
		return ""
	}
	return s.nats.ClientURL()
}

// Validate reports the first bad value, naming its option.
func (c *BridgeConfig) Validate() error {
	cfg := bridge.Config{Prefix: c.Prefix, Publish: c.Publish}
	for _, sub := range c.Subscribe {
		p, err := bridge.ParseSubscription(sub)
		if err != nil {
			return fmt.Errorf("subscribe.subjects: %w", err)
		}
		cfg.Subscribe = append(cfg.Subscribe, p)
	}
	cfg.SetDefaults()
	return cfg.ValidateOptions()
}
