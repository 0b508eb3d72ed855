// Package cpufeatures turns off CPU features named in the environment
// variable PLASMA_CPU_DISABLE (comma-separated, as github.com/klauspost/cpuid
// names them: "avx512f,avx512bw,avx512vl") before the BLAKE3 libraries and
// package bao choose their kernels. It exists to measure, on a machine
// with AVX-512, what a machine with AVX2 only gets:
//
//	PLASMA_CPU_DISABLE=avx512f GODEBUG=cpu.avx512f=off plasma bench stream
//
// (the servers the benchmark starts inherit both; GODEBUG does the same
// for Go's runtime and standard library).
//
// The choice is made in init, which must run before the init of the
// packages that read the features. Go initialises packages in dependency
// order and, among those ready, in the order of their import paths: this
// package depends only on cpuid and packages cpuid imports, so it runs
// right after cpuid, before lukechampine.com/blake3/guts and
// github.com/zeebo/blake3 (later import paths); package bao imports it.
package cpufeatures
