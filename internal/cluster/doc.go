// Package cluster is the cluster directory of Plasma Stream, kept in etcd:
// which nodes are alive (with the address their peers dial and the groups
// they belong to) and which nodes hold which objects.
//
// Every key a node writes is attached to one etcd lease that the node keeps
// alive, so a node that dies disappears from the directory, with all its
// object locations, within the lease TTL, and Close makes it disappear at
// once. The key layout and the consistency model are in docs/cluster.md.
//
// A location is a hint, never the truth: the holder may have evicted or
// deleted the object a moment ago, or be dying with its lease not yet
// expired. Callers must tolerate stale locations (a failed fetch is followed
// by the next holder) and must verify the bytes they receive (the digest).
//
// The Directory keeps its own registration and locations in memory, and
// that set is authoritative: when etcd is unreachable, writes return an
// error but are kept, and a background goroutine writes everything again
// under a new lease when etcd is back (after an etcd restart that lost the
// lease, a long partition, or any failed write).
//
// Nothing a caller waits for waits on etcd longer than Config.OpTimeout
// (default 3 s): reads and the writes of changes that fail so return an
// UnavailableError. The store mirror uses QueueLocation and QueueRemoval,
// which never wait on etcd at all.
package cluster
