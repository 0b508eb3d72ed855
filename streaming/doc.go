// Package streaming streams a node's state changes out, durably and in
// order, in the shape of Cosmos SDK ADR-038's state streaming service: to
// files (the "file" streamer, ADR-038's byte format) and to a NATS
// JetStream stream (the "nats" streamer), or to a program's own
// StreamingService.
//
// A node's state is a set of named stores (StoreKeys): `objects` (the
// local store's sealed objects), `transfers` (every finished transfer in
// or out), and, in a cluster, `locations`, `nodes` and `groups` (the
// directory as the node sees it). Every change is a StoreKVPair. A
// Committer gathers changes into numbered blocks (closed after an
// interval or a number of changes; an idle node commits none) and hands
// each block to every service.
//
// Invariants:
//   - Block numbers only increase, across restarts too: the first block
//     is numbered one past the highest any service already holds.
//   - Nothing is committed before the first Snapshot: the first block of
//     a run is marked Start and Snapshot and holds every object the store
//     holds, so a consumer can rebuild the state from the blocks alone.
//     A later Snapshot block (the store restarted) replaces `objects`.
//   - A file appears under its final name only complete; the meta file,
//     written last, commits its block. On NATS a block's commit message
//     follows its data messages, each with a Nats-Msg-Id.
//   - A service that loses blocks (stop-node-on-error = false) says so in
//     the meta record of the next block it commits (BlockMeta.Prev).
//
// docs/state-streaming.md describes the formats; the protobuf schema is
// docs/state-streaming.proto.
package streaming
