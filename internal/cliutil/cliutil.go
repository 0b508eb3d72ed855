package cliutil

import (
	"fmt"

	"github.com/dustin/go-humanize"
)

// Version is the release of the binaries; set with -ldflags "-X ...".
var Version = "0.1.0-dev"

// DefaultLogLevel is every binary's --log-level default.
const DefaultLogLevel = "info"

// ParseSize parses a byte count: plain bytes ("1073741824") or with a unit
// ("512MiB", "1GiB" binary; "1G", "1GB" decimal).
func ParseSize(s string) (uint64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("size %q: want bytes, optionally with a unit such as 512MiB or 1G", s)
	}
	return n, nil
}

// FormatSize writes n in the largest binary unit that divides it exactly,
// a form ParseSize reads back: "256MiB", "1536KiB", "100".
func FormatSize(n uint64) string {
	units := []string{"", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	u := 0
	for n != 0 && n%1024 == 0 && u < len(units)-1 {
		n /= 1024
		u++
	}
	return fmt.Sprintf("%d%s", n, units[u])
}

// FormatBytes writes a byte count with binary units and three significant
// digits: "512 B", "12.0 MiB", "1.50 GiB".
func FormatBytes(n float64) string {
	if n < 1024 {
		return fmt.Sprintf("%.0f B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	u := -1
	for n >= 1024 && u < len(units)-1 {
		n /= 1024
		u++
	}
	return sig3(n) + " " + units[u]
}

// sig3 writes v (at least 1) with three significant digits.
func sig3(v float64) string {
	switch {
	case v < 9.995:
		return fmt.Sprintf("%.2f", v)
	case v < 99.95:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}
