// Package storewire is the byte layout of the messages exchanged between a
// store client and plasma-store-server over the store's unix socket.
//
// Every message is a frame: a 12-byte header (payload length, message type,
// flags, request id) followed by the payload. Replies carry the request id
// of the request they answer, so one connection can have many requests in
// flight (a blocking Get never holds up a Seal sent after it). The layout
// is documented byte by byte in docs/store-protocol.md; that document and
// this package must change together.
//
// Decoders never trust a length: every read is bounds-checked and every
// count is checked against the bytes that remain before anything is
// allocated, so a hostile or corrupted frame costs an error, never a panic
// or a large allocation. FuzzDecode exercises this.
package storewire
