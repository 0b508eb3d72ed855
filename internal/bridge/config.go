package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/internal/wire"
	"github.com/plasmastream/plasmastream/store"
)

// DefaultPrefix is the first token of every subject of the bridge.
const DefaultPrefix = "plasma"

// Defaults of the replication.
const (
	DefaultConcurrency = 4                // blobs fetched at once
	DefaultRetryMax    = 30 * time.Second // longest wait between attempts at a failed blob
)

// Config of a Bridge. Options says which flags set which fields.
type Config struct {
	Prefix string // --nats-prefix
	Node   string // this node's name
	Addr   string // the address other nodes reach its stream server at
	// ImportDirs, if any, are the only directories imports may read from
	// (--import-dir); none: any file the server's user can read.
	ImportDirs []string
	// Publish lists the subjects (patterns) this node may announce on
	// (publish.subjects); none: any.
	Publish []string
	// Subscribe lists the subjects whose blobs this node replicates
	// (subscribe.subjects).
	Subscribe []Subscription
	// Identity, if set, signs this node's announcements (-k).
	Identity *trust.Identity
	// Trusted, if set, is the trust file: only announcements signed by
	// keys it holds are acted on. nil: any announcement, signed or not.
	Trusted func(trust.PublicKey) bool

	// The node: its store (under a reference: release gives it back),
	// its fetch and its cluster directory.
	Store   func() (st *store.Client, release func(), err error)
	Fetch   func(ctx context.Context, id streamwire.ID, sources []streamwire.PullSource, digest wire.Digest, progress func(int64)) transfer.FetchResult
	Holders func(ctx context.Context, id streamwire.ID) ([]cluster.Location, error)

	// Keep is how long the NATS's JetStream keeps announcements for
	// nodes that were away (keep.go); 0: DefaultKeep; negative: not kept.
	Keep time.Duration
	// Registerer, if set, gets the bridge's Prometheus series.
	Registerer  prometheus.Registerer
	Concurrency int           // blobs fetched at once
	RetryMax    time.Duration // longest backoff between attempts at a failed blob
	Logger      *slog.Logger
}

// Subscription is a subject pattern this node replicates, optionally only
// from some publishers.
type Subscription struct {
	Subject    string
	Publishers []trust.PublicKey // none: every publisher the node trusts
}

// ParseSubscription reads "SUBJECT" or "SUBJECT KEY[,KEY...]" (keys as 64
// hex digits, plasma key show).
func ParseSubscription(s string) (Subscription, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return Subscription{}, fmt.Errorf("subscription %q: want SUBJECT or \"SUBJECT KEY[,KEY...]\"", clip(s))
	}
	sub := Subscription{Subject: f[0]}
	if err := checkPattern(sub.Subject); err != nil {
		return sub, err
	}
	if len(f) == 2 {
		for _, k := range strings.Split(f[1], ",") {
			key, err := trust.ParsePublicKey(k)
			if err != nil {
				return sub, fmt.Errorf("subscription %q: %w", clip(s), err)
			}
			sub.Publishers = append(sub.Publishers, key)
		}
	}
	return sub, nil
}

// SetDefaults fills the zero fields that have defaults.
func (c *Config) SetDefaults() {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Keep == 0 {
		c.Keep = DefaultKeep
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first bad value, naming its option.
func (c *Config) Validate() error {
	if err := c.ValidateOptions(); err != nil {
		return err
	}
	if c.Store == nil || c.Fetch == nil {
		return errors.New("bridge: Store and Fetch are required")
	}
	return nil
}

// ValidateOptions is Validate of the options a user sets.
func (c *Config) ValidateOptions() error {
	if err := CheckSubject(c.Prefix); err != nil {
		return fmt.Errorf("--nats-prefix: %w", err)
	}
	for _, p := range c.Publish {
		if err := checkPattern(p); err != nil {
			return fmt.Errorf("publish.subjects: %w", err)
		}
	}
	for _, s := range c.Subscribe {
		if err := checkPattern(s.Subject); err != nil {
			return fmt.Errorf("subscribe.subjects: %w", err)
		}
	}
	return nil
}

// token is s made safe as one subject token (a node name in a subject).
func token(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r <= ' ' {
			return '_'
		}
		return r
	}, s)
}

// matches reports whether subject matches pattern (NATS wildcards: * one
// token, > one or more at the end).
func matches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, t := range p {
		switch {
		case t == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case t != "*" && t != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}
