// Command plasma-stream-cli is a simple CLI client for Plasma Stream
// server: it sends COPY, TAKE and SYNC requests (and PING, STAT, LIST) to
// a server, from a prompt or from standard input. See internal/streamcli.
package main

import (
	"os"

	"github.com/plasmastream/plasmastream/internal/streamcli"
)

func main() {
	os.Exit(streamcli.Main())
}
