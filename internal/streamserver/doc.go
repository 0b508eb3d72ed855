// Package streamserver is plasma-stream-server: it serves COPY and TAKE
// to peers from the local store, runs SYNC for its clients (pulling from
// many peers at once into the local store), and answers PING, STAT and
// LIST. Transfers themselves are package transfer's; what involves other
// nodes of a cluster (PULL, FETCH, PREFETCH...) is package node's.
//
// Every connection costs one goroutine and is bounded by MaxConnections;
// connections beyond it are told "server busy" at once and closed (after a
// drain of at most 2 s, so that the message is not lost to a reset). Every
// read and write has a deadline (IOTimeout per step; IdleTimeout between
// requests), so a dead, slow or malicious peer costs one connection.
//
// On --http-addr it serves /metrics, /healthz, /readyz and a read-only
// dashboard (dashboard.go, the page in dashboard/): the transfers under
// way and past come from an activity.Registry every transfer reports to,
// the charts from a bounded in-memory history sampled each second. With
// keys that endpoint is HTTPS and requires the read role (httpauth.go).
package streamserver
