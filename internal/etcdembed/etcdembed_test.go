package etcdembed

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/plasmastream/plasmastream/internal/testutil"
)

func start(t *testing.T, cfg Config) *Member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func client(t *testing.T, m *Member) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: m.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

// Start, use, Close, start again on the same directory and ports: the data
// is still there. etcd itself logs nothing at the default level.
func TestStartRestart(t *testing.T) {
	t.Parallel()
	logs := &testutil.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := Config{Dir: filepath.Join(t.TempDir(), "etcd"), ClientURL: testutil.FreeAddr(t), Name: "n1", Logger: log}
	m := start(t, cfg)
	if eps := m.Endpoints(); len(eps) != 1 || eps[0] != "http://"+cfg.ClientURL {
		t.Fatalf("endpoints %v", eps)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cli := client(t, m)
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	m = start(t, cfg)
	defer m.Close()
	cli = client(t, m)
	defer cli.Close()
	resp, err := cli.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after restart: %v %v", resp, err)
	}
	if strings.Contains(logs.String(), "component=etcd") {
		t.Fatalf("etcd logged at the default level:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "embedded etcd ready") {
		t.Fatalf("no log of ours:\n%s", logs.String())
	}
}

// With LogLevel info, etcd's messages come through the slog logger.
func TestLogLevel(t *testing.T) {
	t.Parallel()
	logs := &testutil.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := start(t, Config{Dir: t.TempDir(), ClientURL: "http://" + testutil.FreeAddr(t), Logger: log, LogLevel: "info"})
	m.Close()
	if !strings.Contains(logs.String(), "component=etcd") {
		t.Fatalf("no etcd messages at info level:\n%s", logs.String())
	}
	if _, err := Start(context.Background(), Config{Dir: t.TempDir(), LogLevel: "loud"}); err == nil {
		t.Fatal("bad log level accepted")
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(ctx, Config{Dir: t.TempDir(), ClientURL: "http://" + ln.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("client port in use: %v", err)
	}
	_, err = Start(ctx, Config{Dir: t.TempDir(), ClientURL: "http://" + testutil.FreeAddr(t), PeerURL: "http://" + ln.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("peer port in use: %v", err)
	}

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Start(ctx, Config{Dir: filepath.Join(file, "etcd"), ClientURL: "http://" + testutil.FreeAddr(t)})
	if err == nil || !strings.Contains(err.Error(), "data directory") {
		t.Fatalf("unusable dir: %v", err)
	}
	if os.Geteuid() != 0 { // root writes anywhere
		ro := t.TempDir()
		os.Chmod(ro, 0o500)
		defer os.Chmod(ro, 0o700)
		_, err = Start(ctx, Config{Dir: ro, ClientURL: "http://" + testutil.FreeAddr(t)})
		if err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Fatalf("read-only dir: %v", err)
		}
	}

	if _, err := Start(ctx, Config{}); err == nil {
		t.Fatal("no Dir accepted")
	}
	for _, u := range []string{"https://127.0.0.1:1", "http://nohostport"} {
		if _, err := Start(ctx, Config{Dir: t.TempDir(), ClientURL: u}); err == nil {
			t.Fatalf("client URL %s accepted", u)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = Start(cctx, Config{Dir: t.TempDir(), ClientURL: testutil.FreeAddr(t)})
	if err == nil {
		t.Fatal("Start with a cancelled context succeeded")
	}
}
