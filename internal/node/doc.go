// Package node is what a stream server does as a node of a cluster: it
// joins the cluster directory (package cluster, in etcd) and mirrors its
// local store into it, and it answers the requests that involve other
// nodes — cluster FETCH, PREFETCH, PULL, DELETE-CLUSTER (and the local
// DELETE it sends to each holder), GROUP, NODES and LOCATE. Package
// streamserver reads each request and hands these to Node.Handle.
//
// A Node without a directory (standalone: no --etcd) still answers PULL
// and the local DELETE, which need no directory; the cluster requests get
// StatusNotClustered.
//
// Invariants:
//   - The directory holds a location of this node for exactly the sealed
//     objects of its store, eventually: the store's subscription is in
//     place before the store is listed (Resync), and its events are then
//     mirrored in order (Event), so nothing sealed, hashed or deleted in
//     between is missed. A location gets its digest from the seal, or from
//     the store's digest event once the store has hashed the object.
//     Mirroring never waits on etcd: the directory queues the writes.
//   - The local store is used only under a reference (Config.Use ...
//     Store.Release), so a store that goes away is never touched after
//     its connection closed; an object a request reports as present is
//     held (transfer.Held) until the reply is sent.
//   - Concurrent fetches of one object here share one transfer
//     (singleflight).
//   - Other nodes are reached through one API, transfer.Dial and the
//     transfer.Conn request helpers, with the node's I/O timeout on every
//     step.
//   - Work that outlives its request (a PREFETCH without wait) belongs to
//     the Node and ends with the context it was given; Close waits for it.
package node
