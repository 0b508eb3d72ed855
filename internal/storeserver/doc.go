// Package storeserver is plasma-store-server: the local shared-memory
// object store.
//
// One arena (package arena) holds every object; package alloc places
// objects in it at 64-byte aligned offsets. The object table, reference
// counts, LRU list, blocked Gets and subscribers live in one state value
// guarded by one mutex. Every request runs its state change under that
// mutex and never does I/O while holding it: replies are written by the
// requesting connection's goroutine after the mutex is released, and
// replies made ready by another client (a Get satisfied by a Seal) or by a
// timer are written by a goroutine of their own. So a client that stops
// reading its socket stalls only itself.
//
// Invariants (checked by tests through Stats and List):
//   - an object is visible to Get, Contains and List-as-sealed only once
//     sealed; an unsealed object belongs to its creator alone;
//   - obj.refs is the sum of the per-connection counts in conn.refs;
//   - an object is on the LRU tree iff it is sealed, has refs == 0 and is
//     not pending deletion; only LRU objects are evicted or moved;
//   - the LRU tree is ordered by the sequence number of each object's last
//     use (its seal, or the last release after a reference that counts as
//     a use); the hasher's references, Outboard and internal Gets never
//     count, so reading an object on the store's behalf leaves its place;
//   - the memory of blocked Gets (waitBytes) stays within the configured
//     budget, and each holds about 55 bytes per missing id;
//   - when a connection ends, its unsealed objects are freed and its
//     references released, whatever the reason it ended.
package storeserver
