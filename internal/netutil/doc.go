// Package netutil holds what the project's servers share about sockets:
// for now, how an accept loop survives a transient failure.
package netutil
