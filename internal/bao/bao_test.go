package bao

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"lukechampine.com/blake3"
	"lukechampine.com/blake3/bao"
)

// testData is deterministic pseudo-random bytes.
func testData(n int) []byte {
	data := make([]byte, n)
	blake3.New(0, nil).XOF().Read(data)
	return data
}

// moduleDir is the blake3 module directory, whose testdata is the golden
// reference (not copied into this repository).
func moduleDir(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "lukechampine.com/blake3").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// The library's golden group-0 outboard of its vectors.json, byte for byte.
func TestGolden(t *testing.T) {
	dir := moduleDir(t)
	data, err := os.ReadFile(filepath.Join(dir, "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join(dir, "testdata", "bao-golden.obao"))
	if err != nil {
		t.Fatal(err)
	}
	outboard, root := BuildGroup(data, 0)
	if got := hex.EncodeToString(root[:]); got != "6654fbd1836b531b25e2782c9cc9b792c80abb36b024f59db5d5f6bd3187ddfe" {
		t.Errorf("root %s", got)
	}
	if !bytes.Equal(outboard, golden) {
		t.Errorf("outboard differs from bao-golden.obao (%d vs %d bytes)", len(outboard), len(golden))
	}
	tr, err := ParseGroup(golden, uint64(len(data)), root, 0)
	if err != nil {
		t.Fatal(err)
	}
	verifyAll(t, tr, data)
}

// Roots of 16 KiB-group encodings from
// https://github.com/n0-computer/abao/blob/9b756ec8097afc782d76f7aec0a5ac9f4b82329a/tests/test_vectors.json
// as listed in lukechampine.com/blake3 bao/bao_test.go TestBaoChunkGroup.
func TestChunkGroupVectors(t *testing.T) {
	input := func(n int) (in []byte) { // little-endian uint32 counters 1, 2, 3, ...
		for i := uint32(1); len(in) < n; i++ {
			in = binary.LittleEndian.AppendUint32(in, i)
		}
		return in[:n]
	}
	for _, tc := range []struct {
		n    int
		root string
	}{
		{0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
		{1, "48fc721fbbc172e0925fa27af1671de225ba927134802998b10a1568a188652b"},
		{1023, "15f8c1ae1049fe7e837186612c8ce732e66835841a4569b71e4ac3e3d3411b90"},
		{1024, "f749c19181983b839cd97fe121cebaf076bc951e8c8e6d64accfedad5951ec22"},
		{1025, "3613596275c4ea790774dedf20835b2daf86cacc892feef6ce720c121572f1f9"},
		{16383, "f0970fbfe2f1c5145fa6aa31833779803d5c53743a8443ed1395218f511834ba"},
		{16384, "b318758645c4467406c829a5f3da7cab00010fccccf4b7c314525cd85e2d0af8"},
		{16385, "12a6a6b0554e7f3eed485f668bfd3b37382a2beee5e7ed5594c4a91c4c70f4aa"},
		{32768, "8008de557073cab60f851191359ad9dc1afe9dc6152668ee01825c56ac5a754e"},
		{49152, "91823357fefc308b57bb85ebed1d1edeba3c355e804dc63fa98fcb82554b1566"},
		{180224, "4742cbae9485ce1b86ab359c1a84e203f819795d018b22a5c70c5c4577dd732e"},
		{212992, "760c549edfe95c734b1d6a9b846d81692ed3ca022b541442949a0e42fe570df2"},
	} {
		data := input(tc.n)
		outboard, root := Build(data)
		if got := hex.EncodeToString(root[:]); got != tc.root {
			t.Errorf("size %d: root %s, want %s", tc.n, got, tc.root)
		}
		tr, err := Parse(outboard, uint64(tc.n), root)
		if err != nil {
			t.Fatalf("size %d: %v", tc.n, err)
		}
		verifyAll(t, tr, data)
	}
}

var compatSizes = []int{0, 1, 1023, 1024, 1025, 16383, 16384, 16385, 32768, 49152, 180224, 212992,
	1 << 20, 1<<20 + 1, 5<<20 + 12345}

// Our outboard is the library's, each accepts the other's, and every group
// verifies on its own, in reverse order and concurrently.
func TestCompatible(t *testing.T) {
	for _, n := range compatSizes {
		data := testData(n)
		outboard, root := Build(data)
		want, wantRoot := bao.EncodeBuf(data, Group, true)
		if root != wantRoot || root != blake3.Sum256(data) {
			t.Fatalf("size %d: root %x, library %x", n, root, wantRoot)
		}
		if !bytes.Equal(outboard, want) {
			t.Fatalf("size %d: outboard differs from bao.EncodeBuf", n)
		}
		if len(outboard) != OutboardSize(uint64(n)) || len(outboard) != bao.EncodedSize(n, Group, true) {
			t.Fatalf("size %d: OutboardSize %d, len %d", n, OutboardSize(uint64(n)), len(outboard))
		}
		if !bao.VerifyBuf(data, outboard, Group, root) {
			t.Fatalf("size %d: library rejects our outboard", n)
		}
		tr, err := Parse(want, uint64(n), root)
		if err != nil {
			t.Fatalf("size %d: Parse of library outboard: %v", n, err)
		}
		if tr.Groups() != Groups(uint64(n)) || tr.Size() != uint64(n) || tr.Root() != root ||
			!bytes.Equal(tr.Outboard(), want) || tr.GroupSize() != GroupSize {
			t.Fatalf("size %d: accessors disagree", n)
		}
		verifyAll(t, tr, data)
	}
}

// Groups larger than one SIMD call (group > 4) merge subtrees; every group
// parameter matches the library.
func TestAllGroups(t *testing.T) {
	for _, n := range []int{0, 3000, 1<<20 + 12345, 3 << 20} {
		data := testData(n)
		for group := 0; group <= maxGroup; group++ {
			outboard, root := BuildGroup(data, group)
			want, wantRoot := bao.EncodeBuf(data, group, true)
			if root != wantRoot || !bytes.Equal(outboard, want) {
				t.Fatalf("size %d group %d: differs from library", n, group)
			}
			tr, err := ParseGroup(outboard, uint64(n), root, group)
			if err != nil {
				t.Fatalf("size %d group %d: %v", n, group, err)
			}
			verifyAll(t, tr, data)
		}
	}
	for _, g := range []int{-1, maxGroup + 1} {
		if _, err := ParseGroup(make([]byte, 8), 0, [32]byte{}, g); !errors.Is(err, ErrBadOutboard) {
			t.Errorf("group %d accepted", g)
		}
	}
}

// verifyAll checks every group verifies, in reverse order and concurrently,
// and that spans tile the object.
func verifyAll(t *testing.T, tr *Tree, data []byte) {
	t.Helper()
	var end uint64
	for i := range tr.Groups() {
		off, n := tr.Span(i)
		if off != end || (n == 0 && len(data) > 0) {
			t.Fatalf("span %d = (%d, %d) after %d", i, off, n, end)
		}
		end = off + n
	}
	if end != uint64(len(data)) {
		t.Fatalf("spans end at %d, size %d", end, len(data))
	}
	var wg sync.WaitGroup
	for i := tr.Groups() - 1; i >= 0; i-- {
		wg.Go(func() {
			off, n := tr.Span(i)
			if !tr.VerifyGroup(i, data[off:off+n]) {
				t.Errorf("size %d: group %d does not verify", len(data), i)
			}
		})
	}
	wg.Wait()
}

// A flipped byte in group i fails group i and only group i, including the
// short last group and a one-group object; wrong lengths and indices fail.
func TestRejectGroup(t *testing.T) {
	for _, n := range []int{0, 1, 16384, 16385, 212992, 1<<20 + 1} {
		data := testData(n)
		outboard, root := Build(data)
		tr, err := Parse(outboard, uint64(n), root)
		if err != nil {
			t.Fatal(err)
		}
		for i := range tr.Groups() {
			off, l := tr.Span(i)
			g := data[off : off+l]
			if l > 0 {
				bad := bytes.Clone(g)
				bad[(i*7919)%len(bad)] ^= 0x10
				for j := range tr.Groups() {
					if tr.VerifyGroup(j, bad) {
						t.Errorf("size %d: corrupt group %d verifies as group %d", n, i, j)
					}
				}
				if tr.VerifyGroup(i, g[:l-1]) {
					t.Errorf("size %d: group %d verifies truncated", n, i)
				}
			}
			if tr.VerifyGroup(i, append(bytes.Clone(g), 0)) {
				t.Errorf("size %d: group %d verifies with an extra byte", n, i)
			}
			if !tr.VerifyGroup(i, g) {
				t.Errorf("size %d: group %d does not verify", n, i)
			}
		}
		if tr.VerifyGroup(-1, nil) || tr.VerifyGroup(tr.Groups(), nil) {
			t.Errorf("size %d: out of range index verifies", n)
		}
	}
}

// Any flipped bit in the outboard, a wrong size, a wrong root, or a wrong
// length makes Parse fail.
func TestRejectOutboard(t *testing.T) {
	for _, n := range []int{0, 16385, 212992, 1<<20 + 1} {
		data := testData(n)
		outboard, root := Build(data)
		size := uint64(n)
		everyBit := len(outboard) < 1024
		for i := range outboard {
			for bit := range 8 {
				if !everyBit && bit != i%8 {
					continue
				}
				bad := bytes.Clone(outboard)
				bad[i] ^= 1 << bit
				if _, err := Parse(bad, size, root); !errors.Is(err, ErrBadOutboard) {
					t.Fatalf("size %d: flipped bit %d of byte %d accepted (err %v)", n, bit, i, err)
				}
			}
		}
		wrong := []uint64{size + 1, size + GroupSize, 1 << 40}
		if size > 0 {
			wrong = append(wrong, size-1)
		}
		if size > GroupSize {
			wrong = append(wrong, size-GroupSize)
		}
		for _, s := range wrong {
			if _, err := Parse(outboard, s, root); !errors.Is(err, ErrBadOutboard) {
				t.Errorf("size %d: accepted as size %d", n, s)
			}
		}
		if n > GroupSize { // a one-group root is only checked by VerifyGroup
			badRoot := root
			badRoot[31] ^= 0x80
			if _, err := Parse(outboard, size, badRoot); err == nil {
				t.Errorf("size %d: wrong root accepted", n)
			}
		}
		for _, bad := range [][]byte{nil, outboard[:len(outboard)-1], append(bytes.Clone(outboard), 0)} {
			if _, err := Parse(bad, size, root); err == nil {
				t.Errorf("size %d: outboard of %d bytes accepted", n, len(bad))
			}
		}
	}
}

// A one-group object's outboard is only the length, so a wrong root is
// caught by VerifyGroup, and a size lie within the last group (prefix
// rewritten to match) leaves the last group unverifiable.
func TestRootAndSizeBoundByGroups(t *testing.T) {
	data := testData(5000)
	outboard, root := Build(data)
	badRoot := root
	badRoot[0] ^= 1
	tr, err := Parse(outboard, 5000, badRoot)
	if err != nil {
		t.Fatal(err)
	}
	if tr.VerifyGroup(0, data) {
		t.Error("one group verifies against the wrong root")
	}

	data = testData(3*GroupSize + 100)
	outboard, root = Build(data)
	lie := bytes.Clone(outboard)
	binary.LittleEndian.PutUint64(lie, uint64(len(data)+1))
	tr, err = Parse(lie, uint64(len(data)+1), root)
	if err != nil {
		t.Fatal("parents are the same for a size within the last group:", err)
	}
	if _, n := tr.Span(3); tr.VerifyGroup(3, append(bytes.Clone(data[3*GroupSize:]), 0)) || n != 101 {
		t.Error("last group verifies under a lied size")
	}
}

func BenchmarkBuild1GiB(b *testing.B) {
	data := make([]byte, 1<<30)
	for i := 0; i < len(data); i += 4096 {
		data[i] = byte(i >> 12)
	}
	b.Run("Build", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			Build(data)
		}
	})
	b.Run("Sum", func(b *testing.B) { // the reference speed
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			Sum(data)
		}
	})
}

func BenchmarkVerifyGroup(b *testing.B) {
	data := testData(64 * GroupSize)
	outboard, root := Build(data)
	tr, err := Parse(outboard, uint64(len(data)), root)
	if err != nil {
		b.Fatal(err)
	}
	g := data[5*GroupSize : 6*GroupSize]
	b.SetBytes(GroupSize)
	for b.Loop() {
		if !tr.VerifyGroup(5, g) {
			b.Fatal("does not verify")
		}
	}
}

func BenchmarkParse1GiB(b *testing.B) {
	size := uint64(1 << 30)
	data := make([]byte, size)
	outboard, root := Build(data)
	b.SetBytes(int64(size))
	for b.Loop() {
		if _, err := Parse(outboard, size, root); err != nil {
			b.Fatal(err)
		}
	}
}
