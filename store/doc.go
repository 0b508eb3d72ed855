// Package store is the Go client of plasma-store-server, the local
// shared-memory object store.
//
// A Client connects over the store's unix socket, receives the store's
// arena (one shared-memory file) and maps it once. Objects are then read
// and written in place: Create returns a writable slice over the object's
// bytes in shared memory, Get returns read-only slices over sealed objects
// — no byte is copied between processes. Get's slices are backed by a
// read-only mapping, so a program that writes into a sealed object faults
// instead of silently corrupting what other processes read.
//
// Every view stays valid until the object is released (Release) and the
// client is open; after Close every view is unmapped. A Client is safe for
// concurrent use: requests are multiplexed over one connection, and a Get
// that blocks waiting for an object never holds up other calls.
package store
