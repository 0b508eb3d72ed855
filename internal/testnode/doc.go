// Package testnode runs a store and a stream server in the test's own
// process, as nats-server's tests do: the store on a temporary socket, the
// stream server on a port the kernel picks, its address read from the
// listener (no race for a free port). Everything stops at the end of the
// test. Tests of the binaries themselves use testutil's processes.
package testnode
