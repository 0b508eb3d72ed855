// Package transfer is the transfer engine: everything that moves object
// bytes between a store and a TCP connection, for plasma-stream-server
// (and its cluster node) and for the Go client's direct Copy/Take.
//
//   - Conn (conn.go, request.go): one connection speaking the stream
//     protocol. Every read and write has a deadline (Conn.Timeout per step
//     of at most 4 MiB), kept by Conn itself: callers never touch the
//     socket, so a dead, slow or malicious peer costs its own connection
//     and nothing else.
//   - Send (send.go, sendfile.go): the source side of COPY, TAKE and RELAY,
//     straight from the shared arena with sendfile; RELAY forwards an
//     object still arriving here, group by group as it verifies.
//   - Receive (receive.go): the destination side. Each object is created in
//     the store, filled straight from the socket while every core verifies
//     its 16 KiB groups against the bao outboard sent first (package bao's
//     Verifier), and sealed only once all of it verified; on any failure
//     it is aborted (or its verified part kept for a resumption), so no
//     half-written object is ever visible. Objects up to 1 MiB are received
//     into slabs, verified whole and stored many at a time with the store's
//     CreateAndSealBatch, sent before any read that may wait, so none waits
//     on the network for the next.
//   - Fetch and ServeRange (fetch.go, serverange.go): the verified,
//     multi-source, resumable fetch behind FETCH, PULL and PREFETCH, and
//     the RANGE requests it sends.
//   - Partials (partial.go): the one registry of objects still arriving
//     here, by any of those paths. It pins an arriving object's buffer for
//     the readers that serve it onward (RELAY, RANGE) and releases it with
//     the last one; it keeps the verified part of a broken transfer for
//     the next one to resume from.
//   - Held (held.go): the store references a request keeps on what it
//     reports as present until its reply is sent, so that the objects of
//     one request never evict one another.
//
// Results are per object (result.go); the protocol's byte layout is
// package streamwire's.
package transfer
