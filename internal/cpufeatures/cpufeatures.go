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

import (
	"fmt"
	"os"
	"strings"

	"github.com/klauspost/cpuid/v2"
)

// Env is the environment variable read at start-up.
const Env = "PLASMA_CPU_DISABLE"

// Disabled is what Env turned off, for logs and benchmark reports.
var Disabled []string

func init() {
	names, err := parse(os.Getenv(Env))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", Env, err)
		os.Exit(2)
	}
	for _, n := range names {
		cpuid.CPU.Disable(cpuid.ParseFeature(n))
	}
	Disabled = names
}

// parse splits v into feature names cpuid knows; an unknown one is an
// error naming it.
func parse(v string) ([]string, error) {
	var names []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if cpuid.ParseFeature(f) == cpuid.UNKNOWN {
			return nil, fmt.Errorf("unknown CPU feature %q (names as github.com/klauspost/cpuid spells them: avx512f, avx2, ...)", f)
		}
		names = append(names, strings.ToLower(f))
	}
	return names, nil
}
