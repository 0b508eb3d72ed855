package etcdembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/plasmastream/plasmastream/internal/cluster/etcdlog"
)

// DefaultClientURL is where the member serves clients unless told otherwise.
const DefaultClientURL = "http://127.0.0.1:2379"

// readyTimeout bounds Start's wait for the member to serve, whatever the ctx.
const readyTimeout = 30 * time.Second

// peerURLFile, in Dir, remembers the peer URL chosen the first time so that a
// restart on the same Dir advertises what the member's data says.
const peerURLFile = "plasma-peer-url"

// Config says where the member keeps its data and listens.
type Config struct {
	// Dir holds the member's data (created if missing, mode 0700). Required.
	Dir string
	// ClientURL is served to clients, e.g. http://127.0.0.1:2379; a bare
	// host:port means http. Default DefaultClientURL.
	ClientURL string
	// PeerURL is the raft peer URL. Default: the one this Dir used before,
	// else a free 127.0.0.1 port.
	PeerURL string
	// Name of the member. Default "plasma".
	Name string
	// Logger receives etcd's messages (component=etcd) and ours. nil: none.
	Logger *slog.Logger
	// LogLevel of etcd's own messages: debug, info, warn or error.
	// Default error: etcd is chatty below that.
	LogLevel string
	// TLS, if its files are set, makes the member serve clients over TLS
	// (https) and require a client certificate issued by TLS.CAFile: only
	// holders of such a certificate can read or write the directory. The
	// raft peer URL stays plain http: a single member listens there on
	// loopback by default.
	TLS TLSFiles
}

// TLSFiles are PEM files: a certificate, its private key and the CA that
// issued the certificates to accept.
type TLSFiles struct {
	CertFile, KeyFile, CAFile string
}

// Set reports whether any file is named.
func (f TLSFiles) Set() bool { return f.CertFile != "" || f.KeyFile != "" || f.CAFile != "" }

// Member is a running embedded etcd member.
type Member struct {
	e         *embed.Etcd
	endpoints []string
	log       *slog.Logger
	once      sync.Once
}

// Start starts the member and waits until it serves clients, ctx is done or
// 30 s have passed. Errors name the cause: a port in use, a data directory
// that cannot be written, etcd refusing its data.
func Start(ctx context.Context, cfg Config) (*Member, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Dir == "" {
		return nil, errors.New("etcdembed: Config.Dir (the member's data directory) is required")
	}
	if cfg.Name == "" {
		cfg.Name = "plasma"
	}
	if cfg.ClientURL == "" {
		cfg.ClientURL = DefaultClientURL
	}
	level, err := etcdlog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("etcdembed: %w", err)
	}
	scheme := "http"
	if cfg.TLS.Set() {
		if cfg.TLS.CertFile == "" || cfg.TLS.KeyFile == "" || cfg.TLS.CAFile == "" {
			return nil, errors.New("etcdembed: TLS needs a certificate, its key and a CA file")
		}
		scheme = "https"
	}
	curl, err := parseURL(cfg.ClientURL, scheme)
	if err != nil {
		return nil, fmt.Errorf("etcdembed: client URL: %w", err)
	}
	if err := checkDir(cfg.Dir); err != nil {
		return nil, err
	}
	if err := checkFree(curl.Host); err != nil {
		return nil, fmt.Errorf("etcdembed: client address %s: %w", curl.Host, err)
	}
	purl, err := peerURL(cfg)
	if err != nil {
		return nil, err
	}

	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.Dir
	ec.ListenClientUrls = []url.URL{*curl}
	ec.AdvertiseClientUrls = []url.URL{*curl}
	ec.ListenPeerUrls = []url.URL{*purl}
	ec.AdvertisePeerUrls = []url.URL{*purl}
	ec.InitialCluster = cfg.Name + "=" + purl.String()
	ec.InitialClusterToken = "plasma-" + cfg.Name
	ec.ListenMetricsUrls = nil
	if cfg.TLS.Set() {
		ec.ClientTLSInfo = transport.TLSInfo{
			CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, TrustedCAFile: cfg.TLS.CAFile,
			ClientCertAuth: true,
		}
	}
	// Directory churn (leases, locations) makes revisions; keep 5 minutes.
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = "5m"
	ec.LogLevel = level.String()
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(etcdlog.New(log, level))

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("etcdembed: start member %q in %s: %w", cfg.Name, cfg.Dir, explain(err))
	}
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcdembed: member %q failed while starting: %w", cfg.Name, explain(err))
	case <-e.Server.StopNotify():
		e.Close()
		return nil, fmt.Errorf("etcdembed: member %q stopped while starting (see etcd's log)", cfg.Name)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("etcdembed: member %q not ready: %w", cfg.Name, ctx.Err())
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("etcdembed: member %q not ready after %v", cfg.Name, readyTimeout)
	}
	m := &Member{e: e, endpoints: []string{curl.String()}, log: log}
	log.Info("embedded etcd ready", "name", cfg.Name, "dir", cfg.Dir, "client", curl.String(), "peer", purl.String())
	return m, nil
}

// Endpoints are the client URLs to give clientv3.
func (m *Member) Endpoints() []string { return append([]string(nil), m.endpoints...) }

// Err reports a fatal error of the running member; it is closed when the
// member has stopped.
func (m *Member) Err() <-chan error { return m.e.Err() }

// Close stops the member. Clients with open streams (lease keep-alives,
// watches) delay it by up to etcd's request timeout (7 s by default): close
// the directories and clients that use the member first. It is safe to call
// more than once.
func (m *Member) Close() error {
	m.once.Do(func() {
		m.e.Close()
		m.log.Info("embedded etcd stopped", "client", m.endpoints[0])
	})
	return nil
}

// parseURL reads a URL of the scheme wanted (http, or https for a member
// serving TLS); a bare host:port gets it.
func parseURL(s, scheme string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = scheme + "://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != scheme {
		return nil, fmt.Errorf("%s: want a %s URL", s, scheme)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return nil, fmt.Errorf("%s: want host:port: %w", s, err)
	}
	u.Path = ""
	return u, nil
}

// checkDir makes dir if needed and proves it writable.
func checkDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("etcdembed: data directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("etcdembed: data directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// checkFree tells a clear error when hostport cannot be listened on.
func checkFree(hostport string) error {
	ln, err := net.Listen("tcp", hostport)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("in use (another etcd or plasma-stream-server running?): %w", err)
		}
		return err
	}
	return ln.Close()
}

// peerURL picks the peer URL: the configured one, the one this Dir used
// before if its port is free, else a free loopback port (remembered in Dir).
func peerURL(cfg Config) (*url.URL, error) {
	if cfg.PeerURL != "" {
		u, err := parseURL(cfg.PeerURL, "http")
		if err != nil {
			return nil, fmt.Errorf("etcdembed: peer URL: %w", err)
		}
		if err := checkFree(u.Host); err != nil {
			return nil, fmt.Errorf("etcdembed: peer address %s: %w", u.Host, err)
		}
		return u, nil
	}
	file := filepath.Join(cfg.Dir, peerURLFile)
	if b, err := os.ReadFile(file); err == nil {
		if u, err := parseURL(strings.TrimSpace(string(b)), "http"); err == nil && checkFree(u.Host) == nil {
			return u, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("etcdembed: no free loopback port for the peer URL: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	u := &url.URL{Scheme: "http", Host: addr}
	if err := os.WriteFile(file, []byte(u.String()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("etcdembed: data directory %s is not writable: %w", cfg.Dir, err)
	}
	return u, nil
}

func explain(err error) error {
	switch {
	case err == nil:
		return errors.New("unknown error")
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("address in use: %w", err)
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("data directory not writable: %w", err)
	}
	return err
}
