package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// HugeSize is the object of plasma bench stream --huge: 5 GiB, over the
// 4 GiB line where a 32-bit size or offset would wrap.
const HugeSize = 5 << 30

// Huge copies one object of size bytes (HugeSize if 0) between two nodes
// it starts, each with a store of size + 64 MiB: a verified SYNC COPY,
// then a verified PULL and an unverified one (transfer.Fetch, in this
// process). The object is written straight into the source's shared
// memory, so the benchmark itself holds no copy of it; the copy's digest
// is compared with the source's.
func Huge(ctx context.Context, size int, binDir string, w io.Writer) (map[string]any, error) {
	if size == 0 {
		size = HugeSize
	}
	dir, err := os.MkdirTemp("", "psbhuge")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	memory := strconv.Itoa(size + 64<<20)
	var nodes []*node
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	for _, name := range []string{"a", "b"} {
		n, err := startNode(ctx, binDir, filepath.Join(dir, name+".sock"), name, memory, nil, nil)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	a, b := nodes[0], nodes[1]
	res := map[string]any{"huge_bytes": size}
	start := time.Now()
	id, digest, err := createInPlace(ctx, b.sock, size)
	if err != nil {
		return nil, err
	}
	res["huge_put_and_hash_s"] = round(time.Since(start).Seconds())

	s, err := openSyncer(ctx, a, b)
	if err != nil {
		return nil, err
	}
	defer s.close()
	cpuStart := serversCPU(a, b)
	start = time.Now()
	res2, err := s.c.Sync(ctx, []stream.PeerRequest{{Kind: stream.Copy, From: b.addr, Objects: []store.ObjectID{id}}})
	if err != nil {
		return nil, fmt.Errorf("sync copy of the %d-byte object: %w", size, err)
	}
	took := time.Since(start)
	if res2.Objects != 1 {
		return nil, fmt.Errorf("sync copy of the %d-byte object copied %d objects", size, res2.Objects)
	}
	res["huge_copy_GBps"] = round(float64(size) / 1e9 / took.Seconds())
	res["huge_copy_cpu_s_per_GB"] = round(perGB(serversCPU(a, b)-cpuStart, size, 1))
	got, _, err := s.dst.Outboard(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("digest of the copy: %w", err)
	}
	if got != digest {
		return nil, fmt.Errorf("the copy of %s hashes to %s, the original to %s", id, got, digest)
	}
	if _, err := s.dst.Delete(ctx, id); err != nil {
		return nil, err
	}
	pull, err := pullLarge(ctx, a.sock, b.sock, b.addr, id, size, 1)
	if err != nil {
		return nil, err
	}
	res["huge_pull_GBps"], res["huge_pull_unverified_GBps"] = round(pull.verified), round(pull.unverified)
	fmt.Fprintf(w, "plasma stream benchmark, one object of %d bytes (%.2f GiB)\n", size, float64(size)/(1<<30))
	fmt.Fprintf(w, "  %-44s %10v s\n", "put in place, then hashed by the store", res["huge_put_and_hash_s"])
	fmt.Fprintf(w, "  %-44s %10v GB/s  (%v CPU s/GB, digest checked)\n", "SYNC COPY, verified", res["huge_copy_GBps"], res["huge_copy_cpu_s_per_GB"])
	fmt.Fprintf(w, "  %-44s %10v GB/s\n", "PULL, verified", res["huge_pull_GBps"])
	fmt.Fprintf(w, "  %-44s %10v GB/s\n", "PULL, verification off", res["huge_pull_unverified_GBps"])
	return res, nil
}

// createInPlace creates an object of size bytes in the store at sock,
// fills it with a pattern where it lies, seals it and has the store hash
// it; it returns its id and digest.
func createInPlace(ctx context.Context, sock string, size int) (store.ObjectID, store.Digest, error) {
	c, err := store.Connect(ctx, sock)
	if err != nil {
		return store.ObjectID{}, store.Digest{}, err
	}
	defer c.Close()
	id := store.RandomObjectID()
	buf, err := c.Create(ctx, id, uint64(size), nil)
	if err != nil {
		return id, store.Digest{}, fmt.Errorf("create an object of %d bytes: %w", size, err)
	}
	// A different word every 4 KiB page: a copy that put a page at the
	// wrong offset (a wrapped 32-bit one, say) hashes differently.
	for off := 0; off+8 <= len(buf); off += 4096 {
		v := uint64(off)
		for j := range 8 {
			buf[off+j] = byte(v >> (8 * j))
		}
	}
	if err := c.Seal(ctx, id); err != nil {
		return id, store.Digest{}, err
	}
	if err := c.Release(ctx, id); err != nil {
		return id, store.Digest{}, err
	}
	digest, _, err := c.Outboard(ctx, id)
	if err != nil {
		return id, digest, fmt.Errorf("outboard of the %d-byte object: %w", size, err)
	}
	return id, digest, nil
}
