package cliutil

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
)

// LogComponent is the attribute that names the part of a program a log
// line comes from (component=cluster); --log-level filters by it.
const LogComponent = "component"

// LogSpec is a parsed --log-level: a default level and levels by
// component, as rhio's filters: "info,transfer=debug,cluster=warn".
type LogSpec struct {
	Default    slog.Level
	Components map[string]slog.Level
}

// ParseLogSpec reads "LEVEL[,COMPONENT=LEVEL...]"; the default level may
// be left out ("cluster=debug" keeps info for the rest). Levels are
// debug, info, warn and error.
func ParseLogSpec(s string) (LogSpec, error) {
	spec := LogSpec{Default: slog.LevelInfo, Components: map[string]slog.Level{}}
	seenDefault := false
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		comp, lv, found := strings.Cut(part, "=")
		if !found {
			comp, lv = "", part
		}
		var l slog.Level
		if err := l.UnmarshalText([]byte(strings.ToLower(strings.TrimSpace(lv)))); err != nil || strings.ContainsAny(lv, "+-") {
			return spec, fmt.Errorf("log level %q: want debug, info, warn or error, optionally per component: info,transfer=debug,cluster=warn", lv)
		}
		comp = strings.TrimSpace(comp)
		switch {
		case !found && seenDefault:
			return spec, fmt.Errorf("log level %q: two default levels; per component, write COMPONENT=LEVEL", s)
		case !found:
			spec.Default, seenDefault = l, true
		case comp == "":
			return spec, fmt.Errorf("log level %q: a component name is missing before =", part)
		default:
			if _, dup := spec.Components[comp]; dup {
				return spec, fmt.Errorf("log level %q: component %s given twice", s, comp)
			}
			spec.Components[comp] = l
		}
	}
	return spec, nil
}

// level is the level in force for a component ("" for none).
func (s LogSpec) level(comp string) slog.Level {
	if l, ok := s.Components[comp]; ok {
		return l
	}
	return s.Default
}

// lowest is the lowest level any component logs at.
func (s LogSpec) lowest() slog.Level {
	l := s.Default
	for _, c := range s.Components {
		l = min(l, c)
	}
	return l
}

// NewLogger returns a logger on stderr for a --log-level spec (see
// ParseLogSpec) and a --log-format ("text", the default, or "json").
func NewLogger(level string, format ...string) (*slog.Logger, error) {
	f := "text"
	if len(format) > 0 && format[0] != "" {
		f = format[0]
	}
	return NewLoggerTo(os.Stderr, level, f)
}

// NewLoggerTo is NewLogger writing to w.
func NewLoggerTo(w io.Writer, level, format string) (*slog.Logger, error) {
	spec, err := ParseLogSpec(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: spec.lowest()}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
	return slog.New(&filterHandler{inner: h, spec: spec}), nil
}

// filterHandler drops records below their component's level. The
// component comes from the logger's attributes (logger.With("component",
// ...)) or from the record's own.
type filterHandler struct {
	inner slog.Handler
	spec  LogSpec
	comp  string   // set by WithAttrs
	group []string // open groups: a component inside a group is not ours
}

func (h *filterHandler) Enabled(ctx context.Context, l slog.Level) bool {
	// A record may still name its component itself: let through what
	// any component would log, and decide in Handle.
	if len(h.spec.Components) == 0 || h.comp != "" {
		return l >= h.spec.level(h.comp) && h.inner.Enabled(ctx, l)
	}
	return l >= h.spec.lowest() && h.inner.Enabled(ctx, l)
}

func (h *filterHandler) Handle(ctx context.Context, r slog.Record) error {
	comp := h.comp
	if comp == "" && len(h.group) == 0 {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == LogComponent {
				comp = a.Value.String()
				return false
			}
			return true
		})
	}
	if r.Level < h.spec.level(comp) {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

func (h *filterHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	if len(h.group) == 0 {
		for _, a := range attrs {
			if a.Key == LogComponent {
				c.comp = a.Value.String()
			}
		}
	}
	c.inner = h.inner.WithAttrs(attrs)
	return &c
}

func (h *filterHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.group = append(slices.Clip(h.group), name)
	c.inner = h.inner.WithGroup(name)
	return &c
}
