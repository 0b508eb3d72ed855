// Package etcdlog routes the zap logging of etcd (its embedded server and its
// Go client) into a log/slog logger, at a level of our choosing, so that etcd
// is quiet by default and its messages, when they come, look like ours.
package etcdlog
