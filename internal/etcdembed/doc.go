// Package etcdembed runs a single-member etcd inside the process, for a
// cluster of one machine (plasma-stream-server --etcd embedded). Many
// machines use an external etcd cluster instead: one embedded member per
// process cannot form a cluster with the others.
//
// etcd's own zap logging is routed into the Config's slog logger with
// component=etcd, at error level unless Config.LogLevel says otherwise.
package etcdembed
