// Package bao is the one BLAKE3 tree of the product: it hashes objects
// (Sum), builds their Bao outboards (Build) and verifies them group by group
// against one, out of order and on any core (Parse, Verifier).
//
// The outboard is the format of lukechampine.com/blake3/bao
// (EncodeBuf(data, group, true)): the data length as 8 little-endian bytes,
// then every parent node of the BLAKE3 tree in pre-order, 64 bytes each
// (left CV ‖ right CV). Leaves are groups of 2^group chunks; a subtree of n
// bytes > one group splits at the largest power of two below n, which is
// the BLAKE3 tree itself, so the root is blake3.Sum256(data).
//
// The library decodes sequentially. A receiver fetching from several
// sources, or resuming, gets groups in any order, so Parse checks the whole
// outboard against the root once and keeps the expected chaining value of
// every group; then each group is verified alone by VerifyGroup.
package bao
