package testutil

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// MappedBytes is, for every mapping of process pid (0: this one) whose
// path contains name and whose permissions are perms ("rw-s"), the bytes of
// it that are in the process's page tables (Rss in /proc/PID/smaps), in
// address order.
func MappedBytes(t testing.TB, pid int, name, perms string) []uint64 {
	t.Helper()
	proc := "self"
	if pid != 0 {
		proc = strconv.Itoa(pid)
	}
	f, err := os.Open("/proc/" + proc + "/smaps")
	if err != nil {
		t.Fatalf("read the mappings of process %s: %v", proc, err)
	}
	defer f.Close()
	var rss []uint64
	in := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			in = fields[1] == perms && strings.Contains(s.Text(), name)
		case in && fields[0] == "Rss:":
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				t.Fatalf("smaps of %s: %q: %v", proc, s.Text(), err)
			}
			rss = append(rss, kb<<10)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(fmt.Errorf("smaps of %s: %w", proc, err))
	}
	return rss
}
