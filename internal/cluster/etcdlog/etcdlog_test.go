package etcdlog

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestBridge(t *testing.T) {
	var b bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), zapcore.WarnLevel)
	l.Info("hidden")
	l.With(zap.String("member", "m1")).Warn("shown", zap.Int("n", 3), zap.Error(errors.New("boom")))
	l.Error("setting up serving from embedded etcd failed.", zap.Error(errors.New("mux: server closed")))
	out := b.String()
	if strings.Contains(out, "hidden") || strings.Contains(out, "server closed") {
		t.Fatalf("filtered entries logged:\n%s", out)
	}
	for _, want := range []string{"level=WARN", "msg=shown", "component=etcd", "member=m1", "n=3", "error=boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in %s", want, out)
		}
	}
	New(nil, DefaultLevel).Error("nowhere") // nil logger: dropped
	if lv, err := ParseLevel(""); err != nil || lv != zapcore.ErrorLevel {
		t.Fatalf("default level %v %v", lv, err)
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Fatal("bad level accepted")
	}
}
