// Package testutil starts the project's real components for tests: stores
// in-process or as processes of the real binaries, on temporary sockets.
package testutil
