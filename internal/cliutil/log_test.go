package cliutil

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/plasmastream/plasmastream/internal/testutil"
)

func TestLogFilterByComponent(t *testing.T) {
	var out testutil.Buffer
	log, err := NewLoggerTo(&out, "warn,transfer=debug,cluster=error", "text")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("plain info")                                 // below warn: dropped
	log.Warn("plain warn")                                 // kept
	log.With(LogComponent, "transfer").Debug("xfer debug") // transfer=debug: kept
	log.Debug("record names it", LogComponent, "transfer") // kept, named per record
	log.With(LogComponent, "cluster").Warn("cluster warn") // cluster=error: dropped
	log.With(LogComponent, "cluster").Error("cluster error")
	log.Debug("other debug", LogComponent, "store")                    // default warn: dropped
	log.WithGroup("g").With(LogComponent, "transfer").Debug("grouped") // a component inside a group is not one
	got := out.String()
	for _, want := range []string{"plain warn", "xfer debug", "record names it", "cluster error"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	for _, not := range []string{"plain info", "cluster warn", "other debug", "grouped"} {
		if strings.Contains(got, not) {
			t.Errorf("%q logged:\n%s", not, got)
		}
	}
}

func TestLogJSON(t *testing.T) {
	var out testutil.Buffer
	log, err := NewLoggerTo(&out, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.With(LogComponent, "cluster").Info("joined", "node", "a")
	var rec map[string]any
	if err := json.Unmarshal([]byte(out.String()), &rec); err != nil || rec["msg"] != "joined" || rec["component"] != "cluster" || rec["node"] != "a" {
		t.Fatalf("json line %q: %v %v", out.String(), rec, err)
	}
}

func TestLogSpecErrors(t *testing.T) {
	for _, bad := range []string{"loud", "info,debug", "=debug", "transfer=loud", "a=info,a=debug", "info+2", "text"} {
		if _, err := ParseLogSpec(bad); err == nil {
			t.Errorf("ParseLogSpec(%q) accepted", bad)
		}
	}
	if _, err := NewLoggerTo(&testutil.Buffer{}, "info", "xml"); err == nil || !strings.Contains(err.Error(), "text or json") {
		t.Errorf("format xml: %v", err)
	}
	s, err := ParseLogSpec("cluster=debug")
	if err != nil || s.level("cluster") != -4 || s.level("x") != 0 {
		t.Fatalf("%+v %v", s, err)
	}
}
