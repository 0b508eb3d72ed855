// Package natsconn is a node's connection to NATS: to an embedded
// nats-server with JetStream that the node starts (--nats embedded, the
// single-machine setup, as --etcd embedded is for the directory) or to
// external servers (--nats URL[,URL]). State streaming publishes through
// it; the NATS bridge reuses the same connection.
//
// The connection reconnects forever: a NATS outage is something its
// users wait out (or refuse to, by their own policy), never a reason for
// the connection to give up.
package natsconn
