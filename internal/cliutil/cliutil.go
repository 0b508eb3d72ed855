// Package cliutil holds what every binary of the project shares: the
// version string, log setup and size parsing.
package cliutil

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/dustin/go-humanize"
)

// Version is the release of the binaries; set with -ldflags "-X ...".
var Version = "0.1.0-dev"

// NewLogger returns a text logger on stderr at level (debug, info, warn,
// error).
func NewLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// ParseSize parses a byte count: plain bytes ("1073741824") or with a unit
// ("512MiB", "1GiB" binary; "1G", "1GB" decimal).
func ParseSize(s string) (uint64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("size %q: want bytes, optionally with a unit such as 512MiB or 1G", s)
	}
	return n, nil
}
