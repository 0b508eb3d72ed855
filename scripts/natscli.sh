#!/bin/sh
# Installs the standard NATS command-line tool (natscli, Apache-2.0), which
# the bridge's tests run as a process of a cluster would ("nats request
# plasma.import PATH"), once, outside the clone, and prints its path.
exec "$(dirname "$0")/gotool.sh" nats github.com/nats-io/natscli/nats v0.5.0 natscli
