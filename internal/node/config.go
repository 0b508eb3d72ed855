package node

import (
	"errors"
	"fmt"

	"github.com/plasmastream/plasmastream/internal/cluster"
)

// DefaultEtcdListen is the client address of an embedded etcd member.
const DefaultEtcdListen = "127.0.0.1:2379"

// SetDefaults fills every zero field that has a default.
func (c *ClusterConfig) SetDefaults() {
	if c.EtcdListen == "" {
		c.EtcdListen = DefaultEtcdListen
	}
	if c.Prefix == "" {
		c.Prefix = cluster.DefaultPrefix
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = cluster.DefaultLeaseTTL
	}
	if c.EtcdTimeout == 0 {
		c.EtcdTimeout = cluster.DefaultOpTimeout
	}
}

// Validate reports the first bad value, naming its flag.
func (c *ClusterConfig) Validate() error {
	switch {
	case c.Etcd == "embedded" && c.EtcdDir == "":
		return errors.New("--etcd embedded needs --etcd-dir, the directory of the embedded member's data")
	case c.LeaseTTL < 0:
		return fmt.Errorf("--lease-ttl %v: a duration cannot be negative", c.LeaseTTL)
	case c.EtcdTimeout < 0:
		return fmt.Errorf("--etcd-timeout %v: a duration cannot be negative", c.EtcdTimeout)
	}
	return nil
}
