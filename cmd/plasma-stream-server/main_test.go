package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/streaming"
)

// parse builds the configuration from args as the command does, without
// starting anything.
func parse(t *testing.T, args ...string) (streamserver.Config, error) {
	t.Helper()
	o := newOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.define(fs)
	if err := fs.Parse(args); err != nil {
		return streamserver.Config{}, err
	}
	cfg, err := o.config(fs)
	cfg.Logger = nil
	return cfg, err
}

// The flags' defaults are DefaultConfig's: no default is written twice.
func TestFlagDefaultsAreDefaultConfig(t *testing.T) {
	got, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	want := streamserver.DefaultConfig()
	want.Logger = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("flags without arguments give\n%+v\nDefaultConfig is\n%+v", got, want)
	}
}

// --resume-keep 0 means "not kept" on the command line, in a TOML file
// and in Config alike.
func TestResumeKeepZeroMeansNone(t *testing.T) {
	cfg, err := parse(t, "--resume-keep", "0")
	if err != nil || cfg.ResumeKeep != 0 {
		t.Fatalf("--resume-keep 0: ResumeKeep %v, err %v; want 0", cfg.ResumeKeep, err)
	}
	file := filepath.Join(t.TempDir(), "s.toml")
	if err := os.WriteFile(file, []byte("resume-keep = \"0s\"\nrequest-memory = \"64MiB\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = parse(t, "--config", file)
	if err != nil || cfg.ResumeKeep != 0 || cfg.RequestMemory != 64<<20 {
		t.Fatalf("TOML resume-keep 0: ResumeKeep %v, RequestMemory %d, err %v", cfg.ResumeKeep, cfg.RequestMemory, err)
	}
	if cfg, _ := parse(t); cfg.ResumeKeep != streamserver.DefaultResumeKeep {
		t.Fatalf("no --resume-keep: %v, want %v", cfg.ResumeKeep, streamserver.DefaultResumeKeep)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--plasma-timeout", "0"}, "--plasma-timeout"},
		{[]string{"--request-memory", "0"}, "--request-memory"},
		{[]string{"--request-memory", "2PiB"}, "--request-memory"},
		{[]string{"--request-memory", "lots"}, "request-memory"},
		{[]string{"--max-connections", "-1"}, "--max-connections"},
		{[]string{"--resume-keep", "-1s"}, "--resume-keep"},
		{[]string{"--port", "70000"}, "--port"},
		{[]string{"--etcd", "embedded"}, "--etcd-dir"},
		{[]string{"--etcd", "http://e:2379", "--etcd-cert", "c"}, "go together"},
		{[]string{"--etcd-cert", "c", "--etcd-key", "k", "--etcd-ca", "a"}, "need --etcd"},
		{[]string{"--etcd", "http://e:2379", "--etcd-cert", "c", "--etcd-key", "k", "--etcd-ca", "a"}, "use https://"},
		{[]string{"--etcd", "https://e:2379"}, "needs --etcd-cert"},
		{[]string{"--etcd", "http://e:2379", "--cluster-role", "write", "-k", "k", "--trusted-keys", "t"}, "must require client certificates"},
		{[]string{"--etcd", "https://e:2379", "--etcd-cert", "c", "--etcd-key", "k", "--etcd-ca", "a", "--cluster-role", "boss", "-k", "k", "--trusted-keys", "t"}, "--cluster-role"},
		{[]string{"--etcd", "https://e:2379", "--etcd-cert", "c", "--etcd-key", "k", "--etcd-ca", "a", "--cluster-role", "read"}, "needs this node's own key"},
		{[]string{"--log-level", "loud"}, "log level"},
		{[]string{"--log-format", "xml"}, "text or json"},
		{[]string{"--log-level", "warn,cluster=nope"}, "log level"},
	} {
		if _, err := parse(t, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one naming %s", tt.args, err, tt.want)
		}
	}
	if cfg, err := parse(t, "--io-timeout", "1m", "--request-memory", "1GiB"); err != nil || cfg.IOTimeout != time.Minute || cfg.RequestMemory != 1<<30 {
		t.Fatalf("io-timeout %v request-memory %d err %v", cfg.IOTimeout, cfg.RequestMemory, err)
	}
}

// The TOML file's tables set the streaming options, named by their path;
// "keys = []" is an empty list (the streamer off), not the default.
func TestStreamingTables(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.toml")
	os.WriteFile(file, []byte("[store]\nstreamers = [\"file\", \"nats\"]\nblock-interval = \"250ms\"\n"+
		"[streamers.file]\nwrite_dir = \"/var/x\"\nfsync = false\nkeys = [\"objects\", \"transfers\"]\n[streamers.nats]\nkeys = []\n"), 0o600)
	cfg, err := parse(t, "--config", file, "--nats", "nats://127.0.0.1:4222")
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Streaming
	if o == nil {
		t.Fatal("streamers listed, but streaming is off")
	}
	for key, want := range map[string]any{
		streaming.OptStoreStreamers: []string{"file", "nats"}, streaming.OptStoreBlockInterval: 250 * time.Millisecond,
		streaming.OptStreamersFileWriteDir: "/var/x", streaming.OptStreamersFileFsync: false,
		streaming.OptStreamersFileKeys: []string{"objects", "transfers"}, streaming.OptStreamersNATSKeys: []string{},
		streaming.OptStreamersFileStopNodeOnError: true,
	} {
		if got := o.Get(key); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", key, got, want)
		}
	}
	if cfg.NATS.Servers != "nats://127.0.0.1:4222" {
		t.Fatalf("--nats: %q", cfg.NATS.Servers)
	}
	if cfg, _ := parse(t); cfg.Streaming != nil {
		t.Fatal("no streamers: streaming should be off")
	}
}
