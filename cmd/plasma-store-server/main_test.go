package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/plasmastream/plasmastream/internal/storeserver"
)

// parse builds the configuration from args as the command does, without
// starting anything.
func parse(t *testing.T, args ...string) (storeserver.Config, error) {
	t.Helper()
	o := newOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.define(fs)
	if err := fs.Parse(args); err != nil {
		return storeserver.Config{}, err
	}
	cfg, err := o.config(fs)
	cfg.Logger = nil
	return cfg, err
}

// The flags' defaults are DefaultConfig's: no default is written twice.
func TestFlagDefaultsAreDefaultConfig(t *testing.T) {
	got, err := parse(t, "-m", "1MiB")
	if err != nil {
		t.Fatal(err)
	}
	want := storeserver.DefaultConfig()
	want.Logger, want.Capacity = nil, 1<<20
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("flags without arguments give\n%+v\nDefaultConfig is\n%+v", got, want)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "-m/--memory is required"},
		{[]string{"-m", "10"}, "holds nothing"},
		{[]string{"-m", "1MiB", "--max-clients", "-1"}, "--max-clients"},
		{[]string{"-m", "1MiB", "--blocked-get-memory", "0"}, "--blocked-get-memory"},
		{[]string{"-m", "1MiB", "--log-level", "loud"}, "log level"},
		{[]string{"-m", "1MiB", "--log-format", "xml"}, "text or json"},
		{[]string{"-m", "1MiB", "--log-level", "info,store=loud"}, "log level"},
	} {
		if _, err := parse(t, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one naming %s", tt.args, err, tt.want)
		}
	}
	if cfg, err := parse(t, "-m", "1MiB", "--hugepages"); err != nil || cfg.Dir != "" {
		t.Fatalf("--hugepages without -d: dir %q (want a memfd), err %v", cfg.Dir, err)
	}
}
