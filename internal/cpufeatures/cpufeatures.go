package cpufeatures

import (
	"fmt"
	"os"
	"strings"

	"github.com/klauspost/cpuid/v2"
)

// Env is the environment variable read at start-up.
const Env = "PLASMA_CPU_DISABLE"

func init() {
	names, err := parse(os.Getenv(Env))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", Env, err)
		os.Exit(2)
	}
	for _, n := range names {
		cpuid.CPU.Disable(cpuid.ParseFeature(n))
	}
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
