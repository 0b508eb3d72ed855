#!/bin/sh
# Installs versitygw (an Apache-2.0 S3 server used by the cold-tier tests) once,
# outside the clone, and prints its path. The first build takes minutes; later
# runs find the binary and return at once.
exec "$(dirname "$0")/gotool.sh" versitygw github.com/versity/versitygw/cmd/versitygw v1.8.0 versitygw
