package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The NATS bridge's TOML tables, as rhio's publish and subscribe
// sections, set the dotted flags.
func TestBridgeConfigFile(t *testing.T) {
	key := strings.Repeat("ab", 32)
	file := filepath.Join(t.TempDir(), "s.toml")
	toml := `nats = "embedded"
nats-dir = "/tmp/nats"
nats-prefix = "site1"
nats-leaf = ["nats-leaf://hub:7422"]
import-dir = ["/data"]

[publish]
subjects = ["sensors.>"]

[subscribe]
subjects = ["models.*", "logs.> ` + key + `"]
`
	if err := os.WriteFile(file, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parse(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Bridge
	if b.Prefix != "site1" || !reflect.DeepEqual(b.ImportDirs, []string{"/data"}) || !reflect.DeepEqual(b.Publish, []string{"sensors.>"}) ||
		!reflect.DeepEqual(b.Subscribe, []string{"models.*", "logs.> " + key}) || !reflect.DeepEqual(cfg.NATS.Sites.Leafs, []string{"nats-leaf://hub:7422"}) {
		t.Fatalf("bridge config %+v, sites %+v", b, cfg.NATS.Sites)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--subscribe.subjects", "a.>.b"}, "subscribe.subjects"},
		{[]string{"--subscribe.subjects", "a.> nokey"}, "subscribe.subjects"},
		{[]string{"--publish.subjects", "a..b"}, "publish.subjects"},
		{[]string{"--nats-prefix", "a.*"}, "--nats-prefix"},
	} {
		if _, err := parse(t, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one naming %s", tt.args, err, tt.want)
		}
	}
}
