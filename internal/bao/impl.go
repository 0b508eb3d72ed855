package bao

import (
	"github.com/klauspost/cpuid/v2"
	_ "github.com/plasmastream/plasmastream/internal/cpufeatures" // PLASMA_CPU_DISABLE, before roots is chosen
	zeebo "github.com/zeebo/blake3"
	"lukechampine.com/blake3/guts"
)

// The tree (Build, Parse, VerifyGroup, the segments of Sum) hashes with
// lukechampine.com/blake3/guts, the one Go BLAKE3 that exports chaining
// values of subtrees at a chunk counter; github.com/zeebo/blake3 exports
// only whole-input hashing. A root-only digest of at most one segment
// (Sum of small data, the digest of every small object) may use either.
// BenchmarkBLAKE3Ratio (zeebo's CPU time over lukechampine's, same bytes;
// go test -run '^$' -bench BLAKE3Ratio -cpu 1 ./internal/bao/, and with
// PLASMA_CPU_DISABLE=avx512f GODEBUG=cpu.avx512f=off for AVX2 only) found
// zeebo cheaper for:
//
//   - AVX-512, AMD EPYC: 4–8 KiB (0.90–0.93), where guts runs its 16-lane
//     kernel on a zero-padded 16 KiB buffer; dearer below 4 KiB (1.1–1.4)
//     and from 12 KiB (1.2–1.5).
//   - AVX-512, Intel Xeon (2026-12-03): everything up to 8 KiB (0.60 at
//     1 KiB, 0.85 at 4 KiB); dearer from 12 KiB (1.2–1.6).
//   - AVX2 only, AMD EPYC: from 4 KiB up (0.73–0.91, 0.73 at 1 MiB, where
//     zeebo also merges parents in SIMD); dearer below 4 KiB (1.1–1.4).
//   - AVX2 only, Intel Xeon: every size (0.47 at 1 KiB, 0.85 at 1 MiB).
//
// Both are blake3.Sum256, so the choice changes CPU time, never a digest
// (TestRootImplementationsAgree, FuzzRootImplementations).

// rootChoice is the size range, in bytes, in which zeebo hashes roots;
// empty (max 0) to use guts always.
type rootChoice struct{ min, max int }

// chooseRoot is the range for a CPU with these features, from the
// measurements above (intel: an Intel CPU, else one like AMD's); zeebo has
// no AVX-512 kernel and without AVX2 it was not measured.
func chooseRoot(avx512, avx2, intel bool) rootChoice {
	switch {
	case avx512 && intel:
		return rootChoice{0, 8 << 10}
	case avx512:
		return rootChoice{4 << 10, 8 << 10}
	case avx2 && intel:
		return rootChoice{0, SegmentSize}
	case avx2:
		return rootChoice{4 << 10, SegmentSize}
	}
	return rootChoice{}
}

// roots is this CPU's choice, fixed at start-up.
var roots = chooseRoot(cpuid.CPU.Supports(cpuid.AVX512F), cpuid.CPU.Supports(cpuid.AVX2), cpuid.CPU.VendorID == cpuid.Intel)

// rootOf is the digest of data of at most one segment.
func rootOf(data []byte) [32]byte { return roots.root(data) }

func (c rootChoice) root(data []byte) [32]byte {
	if len(data) >= c.min && len(data) <= c.max {
		return zeebo.Sum256(data)
	}
	return gutsRoot(data)
}

// gutsRoot is rootOf by guts.
func gutsRoot(data []byte) [32]byte {
	n := subtree(data, 0)
	n.Flags |= guts.FlagRoot
	return cvToBytes(guts.ChainingValue(n))
}
