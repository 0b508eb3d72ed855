package bao

import (
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	zeebo "github.com/zeebo/blake3"
	"lukechampine.com/blake3/guts"
)

// The two BLAKE3 implementations for Go, on the work the bao layer does:
// a 16 KiB group's chaining value (Build, VerifyGroup) and a parent node
// (Build, Parse). zeebo/blake3 exports only whole-input hashing, so its
// figure for a group is Sum256 of 16 KiB and for a parent Sum256 of 64
// bytes: the same compressions (16 chunks and 15 parents; one block), but
// finalised as a root. It cannot replace guts inside the tree, which
// needs non-root chaining values at a chunk counter, and is measured to
// know what that costs: run
//
//	go test -run '^$' -bench BLAKE3 ./internal/bao/
//
// and read zeebo/luke (above 1: lukechampine is faster).

var benchSizes = []int{64, 1 << 10, 2 << 10, 4 << 10, 8 << 10, 12 << 10, GroupSize, 64 << 10, 256 << 10, SegmentSize}

func lukeHash(data []byte) func() {
	if len(data) == 64 {
		l, r := bytesToCV(data), bytesToCV(data[32:])
		return func() { key := guts.IV; _ = guts.ChainingValue(guts.ParentNode(l, r, &key, 0)) }
	}
	return func() { _ = guts.ChainingValue(subtree(data, 0)) }
}

func zeeboHash(data []byte) func() { return func() { _ = zeebo.Sum256(data) } }

func BenchmarkBLAKE3(b *testing.B) {
	for _, n := range benchSizes {
		data := make([]byte, n)
		for _, impl := range []struct {
			name string
			f    func([]byte) func()
		}{{"luke", lukeHash}, {"zeebo", zeeboHash}} {
			b.Run(fmt.Sprintf("%s/%d", impl.name, n), func(b *testing.B) {
				f := impl.f(data)
				b.SetBytes(int64(n))
				for b.Loop() {
					f()
				}
			})
		}
	}
}

// BenchmarkBLAKE3Ratio reports, per size, zeebo's CPU time over
// lukechampine's for the same bytes: the best of seven alternating
// 100 ms runs of each (b.N is not used).
func BenchmarkBLAKE3Ratio(b *testing.B) {
	for _, n := range benchSizes {
		data := make([]byte, n)
		luke, zb := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
		for range 7 {
			luke = min(luke, perOp(lukeHash(data)))
			zb = min(zb, perOp(zeeboHash(data)))
		}
		ratio := float64(zb) / float64(luke)
		b.Logf("%8d bytes: luke %8v (%5.2f GB/s), zeebo %8v (%5.2f GB/s), zeebo/luke %.2f",
			n, luke, float64(n)/float64(luke.Nanoseconds()), zb, float64(n)/float64(zb.Nanoseconds()), ratio)
		b.ReportMetric(ratio, fmt.Sprintf("zeebo/luke@%d", n))
	}
	for b.Loop() {
	}
}

// perOp is the mean CPU time of f, on this thread, over about 100 ms of
// it: CPU time, not wall time, so that other processes on a shared
// machine do not count.
func perOp(f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, n := threadCPU(), 0
	for threadCPU()-start < 100*time.Millisecond {
		for range 64 {
			f()
		}
		n += 64
	}
	return (threadCPU() - start) / time.Duration(n)
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}
