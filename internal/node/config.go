package node

import (
	"errors"
	"fmt"
	"strings"

	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/trust"
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
	case (c.EtcdCert != "" || c.EtcdKey != "" || c.EtcdCA != "") && !c.EtcdSecured():
		return errors.New("--etcd-cert, --etcd-key and --etcd-ca go together: a certificate, its key and the CA that issued etcd's")
	case c.EtcdSecured() && c.Etcd == "":
		return errors.New("--etcd-cert, --etcd-key and --etcd-ca need --etcd (embedded, or etcd's https URLs)")
	}
	if c.Etcd != "" && c.Etcd != "embedded" {
		for _, u := range strings.Split(c.Etcd, ",") {
			if c.EtcdSecured() && strings.HasPrefix(u, "http://") {
				return fmt.Errorf("--etcd %s: with --etcd-cert, etcd is reached over TLS: use https://", u)
			}
			if !c.EtcdSecured() && strings.HasPrefix(u, "https://") {
				return fmt.Errorf("--etcd %s: an https etcd needs --etcd-cert, --etcd-key and --etcd-ca", u)
			}
		}
	}
	if _, err := c.MemberRole(); err != nil {
		return err
	}
	return nil
}

// EtcdSecured reports whether etcd is reached with a client certificate.
func (c *ClusterConfig) EtcdSecured() bool {
	return c.EtcdCert != "" && c.EtcdKey != "" && c.EtcdCA != ""
}

// MemberRole is the role of a key registered in the directory (see
// ClusterRole). Trusting registered keys needs an etcd secured with
// client certificates: whoever can write to an open etcd could register
// their own key.
func (c *ClusterConfig) MemberRole() (trust.Role, error) {
	switch c.ClusterRole {
	case "":
		if c.EtcdSecured() {
			return trust.RoleAdmin, nil
		}
		return trust.RoleNone, nil
	case "none":
		return trust.RoleNone, nil
	}
	r, err := trust.ParseRole(c.ClusterRole)
	if err != nil {
		return r, fmt.Errorf("--cluster-role: %w (or none)", err)
	}
	if !c.EtcdSecured() {
		return r, fmt.Errorf("--cluster-role %s trusts the node keys registered in etcd, so etcd must require client certificates: give --etcd-cert, --etcd-key and --etcd-ca (anyone who can write to an open etcd could register a key)", r)
	}
	return r, nil
}
