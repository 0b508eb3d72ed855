package natsconn

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// Sites joins the embedded server to other NATS servers, with NATS's own
// means (docs/nats-bridge.md): as a leaf node of another site's server
// (--nats-leaf), by accepting leaf nodes (--nats-leaf-listen), or with
// anything a nats-server configuration file can say — a cluster, gateways,
// accounts (--nats-config). External servers (--nats URL) are configured
// where they run.
type Sites struct {
	// ConfigFile is a nats-server configuration file the embedded server
	// starts from; --nats-listen, --nats-dir and JetStream fill what it
	// leaves unset.
	ConfigFile string
	// Leafs are the URLs (nats-leaf://host:7422) of servers this one
	// connects to as a leaf node.
	Leafs []string
	// LeafListen is where this server accepts leaf nodes (host:port).
	LeafListen string
	// Domain is the embedded server's JetStream domain. With leaf nodes
	// each site keeps its own JetStream: a site without a domain gets its
	// server name.
	Domain string
}

// joined reports whether anything joins the server to others.
func (s Sites) joined() bool { return len(s.Leafs) > 0 || s.LeafListen != "" || s.ConfigFile != "" }

// options is base with the sites applied.
func (s Sites) options(base *server.Options) (*server.Options, error) {
	opts := base
	if s.ConfigFile != "" {
		fo, err := server.ProcessConfigFile(s.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("--nats-config %s: %w", s.ConfigFile, err)
		}
		if fo.Port == 0 {
			fo.Host, fo.Port = base.Host, base.Port
		}
		if fo.StoreDir == "" {
			fo.StoreDir = base.StoreDir
		}
		if fo.ServerName == "" {
			fo.ServerName = base.ServerName
		}
		fo.JetStream, fo.NoSigs, fo.NoLog = true, true, true
		opts = fo
	}
	for _, l := range s.Leafs {
		u, err := url.Parse(l)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("--nats-leaf %q: want a URL such as nats-leaf://host:7422", l)
		}
		opts.LeafNode.Remotes = append(opts.LeafNode.Remotes, &server.RemoteLeafOpts{URLs: []*url.URL{u}})
	}
	if s.LeafListen != "" {
		host, port, err := splitHostPort(s.LeafListen)
		if err != nil {
			return nil, fmt.Errorf("--nats-leaf-listen %q: %w", s.LeafListen, err)
		}
		if port == 0 {
			return nil, fmt.Errorf("--nats-leaf-listen %q: give a port (7422 is NATS's)", s.LeafListen)
		}
		opts.LeafNode.Host, opts.LeafNode.Port = host, port
	}
	if opts.JetStreamDomain == "" && s.joined() {
		opts.JetStreamDomain = s.Domain
		if opts.JetStreamDomain == "" {
			opts.JetStreamDomain = strings.ReplaceAll(opts.ServerName, ".", "_")
		}
	}
	return opts, nil
}
