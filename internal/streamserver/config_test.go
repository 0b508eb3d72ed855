package streamserver_test

import (
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/testutil"
)

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*streamserver.Config)
		want string // "" valid
	}{
		{"default", func(*streamserver.Config) {}, ""},
		{"zero values take defaults", func(c *streamserver.Config) { *c = streamserver.Config{} }, ""},
		{"any port", func(c *streamserver.Config) { c.Port = 0 }, ""},
		{"no resume", func(c *streamserver.Config) { c.ResumeKeep = 0 }, ""},
		{"negative connections", func(c *streamserver.Config) { c.MaxConnections = -1 }, "--max-connections -1"},
		{"negative concurrency", func(c *streamserver.Config) { c.SyncConcurrency = -2 }, "--sync-concurrency -2"},
		{"port too large", func(c *streamserver.Config) { c.Port = 65536 }, "--port 65536"},
		{"negative port", func(c *streamserver.Config) { c.Port = -1 }, "--port -1"},
		{"negative plasma timeout", func(c *streamserver.Config) { c.PlasmaTimeout = -time.Millisecond }, "--plasma-timeout"},
		{"negative io timeout", func(c *streamserver.Config) { c.IOTimeout = -time.Second }, "--io-timeout"},
		{"negative idle timeout", func(c *streamserver.Config) { c.IdleTimeout = -time.Second }, "--idle-timeout"},
		{"negative resume keep", func(c *streamserver.Config) { c.ResumeKeep = -time.Second }, "--resume-keep"},
		{"request memory too large", func(c *streamserver.Config) { c.RequestMemory = 1<<50 + 1 }, "--request-memory"},
		{"negative request memory", func(c *streamserver.Config) { c.RequestMemory = -1 }, "--request-memory"},
		{"embedded etcd without a directory", func(c *streamserver.Config) { c.Cluster.Etcd = "embedded" }, "--etcd-dir"},
		{"embedded etcd", func(c *streamserver.Config) { c.Cluster.Etcd, c.Cluster.EtcdDir = "embedded", "/tmp/x" }, ""},
		{"negative lease", func(c *streamserver.Config) { c.Cluster.LeaseTTL = -time.Second }, "--lease-ttl"},
		{"key without trust file", func(c *streamserver.Config) { c.PrivateKey = "/k" }, "--trusted-keys go together"},
		{"trust file without key", func(c *streamserver.Config) { c.TrustedKeys = "/t" }, "--private-key and --trusted-keys"},
		{"key and trust file", func(c *streamserver.Config) { c.PrivateKey, c.TrustedKeys = "/k", "/t" }, ""},
		{"negative etcd timeout", func(c *streamserver.Config) { c.Cluster.EtcdTimeout = -time.Second }, "--etcd-timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := streamserver.DefaultConfig()
			tt.edit(&c)
			c.SetDefaults()
			testutil.WantError(t, c.Validate(), tt.want)
		})
	}
}

// SetDefaults fills what is zero and keeps what is set; the zeros that
// mean something (any port, no resuming) stay.
func TestConfigSetDefaults(t *testing.T) {
	var c streamserver.Config
	c.SetDefaults()
	if c.MaxConnections != streamserver.DefaultMaxConnections || c.PlasmaSocket == "" || c.RequestMemory != streamserver.DefaultRequestMemory ||
		c.Cluster.EtcdListen != streamserver.DefaultEtcdListen || c.Logger == nil {
		t.Fatalf("zero Config after SetDefaults: %+v", c)
	}
	if c.Port != 0 || c.ResumeKeep != 0 || c.NodeName != "" {
		t.Fatalf("SetDefaults changed a meaningful zero: port %d, resume-keep %v, node %q", c.Port, c.ResumeKeep, c.NodeName)
	}
	c = streamserver.Config{MaxConnections: 3}
	c.SetDefaults()
	if c.MaxConnections != 3 {
		t.Fatalf("SetDefaults replaced MaxConnections 3 with %d", c.MaxConnections)
	}
}
