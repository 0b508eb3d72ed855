package bench

import (
	"math"
	"strings"
	"testing"
)

// A report in the shape iperf3 3.x prints with -J (trimmed to what is
// read).
const iperf3Report = `{"end":{"sum_sent":{"bytes":2000000000,"seconds":1.0},
"sum_received":{"bytes":2000000000,"seconds":1.0,"bits_per_second":16e9},
"cpu_utilization_percent":{"host_total":75,"remote_total":25}}}`

func TestParseIperf3(t *testing.T) {
	r, err := parseIperf3([]byte(iperf3Report))
	if err != nil {
		t.Fatal(err)
	}
	// 2 GB/s; (0.75 + 0.25) CPU seconds over 2 GB.
	if math.Abs(r.rate-2) > 1e-9 || math.Abs(r.cpu-0.5) > 1e-9 {
		t.Errorf("rate %v GB/s, cpu %v s/GB; want 2 and 0.5", r.rate, r.cpu)
	}
	for _, bad := range []string{``, `{}`, `{"end":{"sum_received":{"bytes":0}}}`, `[1]`} {
		if _, err := parseIperf3([]byte(bad)); err == nil {
			t.Errorf("parseIperf3(%q) gave no error", bad)
		}
	}
}

func FuzzParseIperf3(f *testing.F) {
	f.Add([]byte(iperf3Report))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := parseIperf3(b); err == nil && (r.rate <= 0 || math.IsNaN(r.cpu)) {
			t.Errorf("accepted %q as rate %v cpu %v", b, r.rate, r.cpu)
		}
	})
}

// A --flight-src without the module is named in the error.
func TestBuildFlightBadSource(t *testing.T) {
	src := t.TempDir()
	_, err := buildFlight(t.Context(), src, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "--flight-src") || !strings.Contains(err.Error(), src) {
		t.Fatalf("buildFlight(%s) = %v, want an error naming --flight-src and the directory", src, err)
	}
}
