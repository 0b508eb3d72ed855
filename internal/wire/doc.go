// Package wire holds what every binary protocol of the project shares: a
// 12-byte frame header and bounds-checked little-endian field codecs.
//
// Decoders never trust a length: every read is bounds-checked and every
// count is checked against the bytes that remain before anything is
// allocated, so a hostile or corrupted frame costs an error, never a panic
// or a large allocation.
package wire
