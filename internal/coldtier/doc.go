// Package coldtier is the store's cold tier: a directory (file://) or an
// S3 bucket (s3://) that holds objects evicted from memory (spilled) or
// persisted on request, so that a later Get restores them and a restarted
// store still has them.
//
// Layout under the tier's root (a directory, or a bucket and prefix):
//
//	blobs/<digest hex>        the object's data, keyed by its BLAKE3 hash
//	blobs/<digest hex>.obao   its bao outboard (16 KiB groups, package bao)
//	objects/<id hex>.rec      the Record naming the object: id, digest,
//	                          sizes, metadata (see record.go)
//
// Invariants:
//   - a record is written only after its blob and outboard are complete,
//     so a record visible in the tier always names complete bytes (a crash
//     in between leaves an unreferenced blob, never a half object);
//   - every file appears complete or not at all: the directory tier writes
//     a temporary file, fsyncs it and renames it into place; an S3 object
//     is atomic by the protocol (a multipart upload is invisible until
//     completed);
//   - the tier is never trusted: a restore checks the outboard against the
//     record's digest and every 16 KiB group of data against the outboard
//     before the store serves a byte.
package coldtier
