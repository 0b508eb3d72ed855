// Package plasmacmd is the `plasma` command line tool: thin commands over
// the store client.
package plasmacmd
