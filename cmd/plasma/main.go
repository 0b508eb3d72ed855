// Command plasma is the everyday tool for a Plasma store: put, get, ls,
// rm, evict, watch, stat, benchmarks, and node keys (keygen, key show).
package main

import (
	"fmt"
	"os"

	"github.com/plasmastream/plasmastream/internal/plasmacmd"
)

func main() {
	if err := plasmacmd.New().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "plasma:", err)
		os.Exit(1)
	}
}
