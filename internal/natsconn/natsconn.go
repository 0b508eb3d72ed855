package natsconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Embedded is the Servers value that starts an embedded server.
const Embedded = "embedded"

// DefaultListen is the client address of an embedded server.
const DefaultListen = "127.0.0.1:4222"

// Config says which NATS to use.
type Config struct {
	// Servers is Embedded or client URLs, comma-separated (--nats); ""
	// means no NATS.
	Servers string
	// Listen is the client address of the embedded server (--nats-listen;
	// port 0: any free port, read from Conn.ClientURL).
	Listen string
	// Dir holds the embedded server's JetStream data (--nats-dir):
	// required with Embedded.
	Dir string
	// Name names the client connection (the node's name).
	Name   string
	Logger *slog.Logger // nil: discard
	// Sites joins the embedded server to other servers (sites.go).
	Sites Sites
}

// SetDefaults fills the zero fields that have defaults.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first bad value, naming its flag.
func (c *Config) Validate() error {
	if c.Servers != Embedded {
		return nil
	}
	if c.Dir == "" {
		return errors.New("--nats embedded needs --nats-dir, the directory of the embedded server's JetStream data")
	}
	if _, _, err := splitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--nats-listen %q: %w", c.Listen, err)
	}
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("port %q: give 0 to 65535", port)
	}
	return host, p, nil
}

// Conn is a connection to NATS, with the embedded server it started, if
// any.
type Conn struct {
	NC  *nats.Conn
	srv *server.Server
	url string
}

// readyTimeout bounds the wait for an embedded server to serve.
const readyTimeout = 30 * time.Second

// Connect starts the embedded server if cfg asks for it, and connects.
// Connecting to external servers that are down is not an error: the
// connection keeps trying (its users see publishes fail meanwhile).
func Connect(ctx context.Context, cfg Config) (*Conn, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Conn{url: cfg.Servers}
	if cfg.Servers == Embedded {
		srv, err := startEmbedded(cfg)
		if err != nil {
			return nil, err
		}
		c.srv, c.url = srv, srv.ClientURL()
	}
	log := cfg.Logger.With("component", "nats")
	nc, err := nats.Connect(c.url, nats.Name(cfg.Name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(250*time.Millisecond), nats.Timeout(5*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS connection lost; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "server", nc.ConnectedUrlRedacted()) }))
	if err != nil {
		c.shutdownServer()
		return nil, fmt.Errorf("connect to NATS at %s: %w", c.url, err)
	}
	c.NC = nc
	return c, nil
}

func startEmbedded(cfg Config) (*server.Server, error) {
	host, port, err := splitHostPort(cfg.Listen)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts, err := cfg.Sites.options(&server.Options{Host: host, Port: port, JetStream: true, StoreDir: cfg.Dir,
		NoSigs: true, NoLog: true, ServerName: "plasma-" + strings.ReplaceAll(cfg.Name, " ", "_")})
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS server did not serve on %s within %v (is the port in use? choose another with --nats-listen)", cfg.Listen, readyTimeout)
	}
	return srv, nil
}

// ClientURL is the URL clients reach this NATS at (the embedded
// server's, or the configured URLs).
func (c *Conn) ClientURL() string { return c.url }

// Close closes the connection (flushing what it buffered) and stops the
// embedded server.
func (c *Conn) Close() {
	if c.NC != nil {
		c.NC.FlushTimeout(2 * time.Second)
		c.NC.Close()
	}
	c.shutdownServer()
}

func (c *Conn) shutdownServer() {
	if c.srv != nil {
		c.srv.Shutdown()
		c.srv.WaitForShutdown()
	}
}
