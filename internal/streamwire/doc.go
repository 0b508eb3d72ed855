// Package streamwire is the byte layout of the Plasma Stream protocol
// spoken over TCP between plasma-stream-servers (COPY, TAKE, RELAY, RANGE,
// PULL) and between a client and its server (SYNC, PING, STAT, LIST, and
// the cluster requests), with its status codes and the JSON reply types of
// the cluster requests (cluster.go), defined once here for the server and
// the clients alike. It is documented byte by
// byte in docs/stream-protocol.md; the two change together.
//
// Framing is package wire's: a 12-byte header and a payload. Object bytes
// are the exception: after an ObjectHeader frame the sender writes the
// metadata, the data and the 32-byte BLAKE3 digest of the data raw, so
// that they can be sent with sendfile and received straight into shared
// memory.
//
// Decoders check structure only (lengths, bounds, trailing bytes). Limits
// with their own result codes (at most 65,536 objects per peer request,
// 1024 peer requests per SYNC, unique ids...) are checked by Validate, so a
// client is told which limit it broke rather than "malformed". ReadSync
// and ReadCopy decode the large requests as their bytes arrive, so that a
// server's memory grows only with what a client actually sent.
package streamwire
