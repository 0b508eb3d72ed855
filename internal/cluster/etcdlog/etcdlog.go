package etcdlog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// DefaultLevel is the level below which etcd's messages are dropped unless
// asked otherwise: etcd is chatty at info and warn level (elections,
// snapshots, every retried request while a member is down).
const DefaultLevel = zapcore.ErrorLevel

// ParseLevel turns "debug", "info", "warn", "error" (or "" for DefaultLevel)
// into a zap level.
func ParseLevel(s string) (zapcore.Level, error) {
	if s == "" {
		return DefaultLevel, nil
	}
	var l zapcore.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(s))); err != nil {
		return DefaultLevel, fmt.Errorf("etcd log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// New returns a zap logger that writes entries at level or above to l, with
// the attribute component=etcd. A nil l gives a logger that drops everything.
func New(l *slog.Logger, level zapcore.Level) *zap.Logger {
	if l == nil {
		return zap.NewNop()
	}
	return zap.New(&core{h: l.With("component", "etcd").Handler(), level: level})
}

type core struct {
	h     slog.Handler
	level zapcore.Level
}

func (c *core) Enabled(l zapcore.Level) bool {
	return l >= c.level && c.h.Enabled(context.Background(), slogLevel(l))
}

func (c *core) With(fields []zapcore.Field) zapcore.Core {
	if len(fields) == 0 {
		return c
	}
	return &core{h: c.h.WithAttrs(attrs(fields)), level: c.level}
}

func (c *core) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *core) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if benign(e, fields) {
		return nil
	}
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(attrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

func (c *core) Sync() error { return nil }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func attrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	out := make([]slog.Attr, 0, len(enc.Fields))
	for _, f := range fields { // keep zap's field order
		if v, ok := enc.Fields[f.Key]; ok {
			out = append(out, slog.Any(f.Key, v))
			delete(enc.Fields, f.Key)
		}
	}
	return out
}

// benign recognizes the errors an embedded etcd logs on every normal
// shutdown ("setting up serving from embedded etcd failed." with "mux:
// server closed", "http: Server closed", "use of closed network
// connection"), which are not errors for us.
func benign(e zapcore.Entry, fields []zapcore.Field) bool {
	if e.Message != "setting up serving from embedded etcd failed." {
		return false
	}
	for _, f := range fields {
		if err, ok := f.Interface.(error); ok && f.Type == zapcore.ErrorType {
			if strings.Contains(strings.ToLower(err.Error()), "closed") {
				return true
			}
		}
	}
	return false
}
