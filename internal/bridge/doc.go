// Package bridge is a node's NATS bridge (docs/nats-bridge.md): processes
// of a cluster talk to the node through NATS requests, and blobs
// replicate between nodes, and between sites, by subject.
//
//   - Requests (<prefix>.import, .announce, .locate, .stat, .replication;
//     each also as <prefix>.<op>.<node> for one node): JSON replies, an
//     error as {"error": "..."}. Import streams a file of the node's
//     machine into the store under its BLAKE3 content address (import.go):
//     never whole in the Go heap, never visible half-written.
//   - Announcements (<prefix>.blobs.<subject>): a blob's hash, size, name,
//     and the node and stream server address that hold it, signed with
//     the node's key when it has one. A subscribing node fetches every
//     announced blob it lacks with the node's verified, resumable,
//     multi-source fetch from every node known to hold it, and reports it
//     on <prefix>.replicated.<subject>, which the other subscribers take
//     as one more holder.
//
// Invariants:
//   - One fetch per blob at a time here (Node.FetchFrom's singleflight);
//     an announcement of a blob already held, in flight, or from a holder
//     already known costs a map lookup.
//   - A failed fetch keeps its verified groups (transfer.Partials): the
//     next attempt, when a new holder is announced or after a backoff,
//     resumes from them.
//   - With a trust configuration, an announcement is acted on only if it
//     is signed by a key the node trusts (and, for a subscription with
//     publishers, by one of those); its signature covers the subject.
//   - Everything the bridge starts ends with Close.
package bridge
