// Package s3import makes S3 buckets sources of a store, as rhio does:
// Import stores one S3 object under its BLAKE3 content address (with its
// bao outboard), and Watch polls a prefix of a bucket and imports every
// object that is new or has changed (docs/cold-tier.md, "Buckets as
// sources").
//
// Invariants:
//   - An object's bytes go from the network into the store's shared
//     memory, never whole into the Go heap, and nothing half-written is
//     ever visible: every failure (S3 error, object gone while read,
//     store full, SIGINT) aborts the objects created for it.
//   - The watch's state file names, per key, the ETag and size last
//     imported. It is replaced atomically (temporary file, fsync,
//     rename, fsync of the directory): a watch killed at any moment
//     leaves the old state or the new one, never a mix.
//   - A failing object never stops the watch: it is retried on later
//     polls with a growing delay. Only a store that is gone (its
//     connection broken) ends it, with ErrStoreUnavailable.
package s3import
