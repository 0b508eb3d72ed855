package bao

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// printRoots is set in the environment of the test binary run as a
// child: it prints the choice made at start-up and stops.
const printRoots = "BAO_TEST_PRINT_ROOTS"

func TestMain(m *testing.M) {
	if os.Getenv(printRoots) != "" {
		fmt.Printf("%d %d %v\n", roots.min, roots.max, cpuid.CPU.Supports(cpuid.AVX512F))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// PLASMA_CPU_DISABLE takes effect before the choice of kernels made at
// start-up: with avx512f (and avx2) turned off, this process chooses as a
// machine without them does. An unknown feature stops the program.
func TestCPUDisableBeforeRootsChosen(t *testing.T) {
	run := func(disable string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), printRoots+"=1", "PLASMA_CPU_DISABLE="+disable)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for disable, want := range map[string]rootChoice{
		"avx512f":      chooseRoot(false, cpuid.CPU.Supports(cpuid.AVX2), cpuid.CPU.VendorID == cpuid.Intel),
		"avx512f,avx2": chooseRoot(false, false, false),
	} {
		out, err := run(disable)
		if err != nil {
			t.Fatalf("PLASMA_CPU_DISABLE=%s: %v: %s", disable, err, out)
		}
		if w := fmt.Sprintf("%d %d false", want.min, want.max); out != w {
			t.Errorf("PLASMA_CPU_DISABLE=%s: the child chose %q, want %q", disable, out, w)
		}
	}
	out, err := run("avx512f,nosuchthing")
	if err == nil || !strings.Contains(out, `unknown CPU feature "nosuchthing"`) {
		t.Errorf("an unknown feature: err %v, output %q; want exit 2 naming it", err, out)
	}
}
