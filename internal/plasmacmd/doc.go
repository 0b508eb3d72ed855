// Package plasmacmd is the `plasma` command line tool: thin commands over
// the store client, the stream client for cluster operations, and
// `keygen` / `key show` over internal/trust for node identities.
package plasmacmd
