#!/usr/bin/env bash
# Runs the whole test suite: Go (with the race detector) and the Python
# client. Installs what the tests need from Debian when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/bin/python3 ] || need+=(python3)
/usr/bin/python3 -c 'import pytest' 2>/dev/null || need+=(python3-pytest)
/usr/bin/python3 -c 'import numpy' 2>/dev/null || need+=(python3-numpy)
/usr/bin/python3 -c 'import cryptography' 2>/dev/null || need+=(python3-cryptography)   # the stream client's keys
command -v etcd >/dev/null || need+=(etcd-server)   # the external 3-member etcd cluster tests
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need+=(nats-server)   # the external NATS of the state streaming tests
command -v chromium >/dev/null || need+=(chromium)   # the dashboard, tested in a real browser
command -v iperf3 >/dev/null || need+=(iperf3)   # the stream benchmark's baseline, run by its test
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The S3 server of the cold-tier tests, built once outside the clone
# (minutes the first time); the tests fail, naming this script, without it.
scripts/versitygw.sh >/dev/null
# The standard NATS tool, through which the bridge's tests send requests.
scripts/natscli.sh >/dev/null

go vet ./...
go test -race -count=1 -timeout 20m ./...
if [ -d python/tests ]; then
  /usr/bin/python3 -m pytest -q python/tests
fi
