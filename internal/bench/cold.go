package bench

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/sys/unix"

	"github.com/plasmastream/plasmastream/internal/coldtier"
	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/store"
)

// ColdConfig sizes the cold-tier benchmark.
type ColdConfig struct {
	Size   int    // bytes of the object (default 1 GiB)
	Rounds int    // timed repetitions, alternating with the raw medium (default 3)
	Dir    string // directory of the file:// tier (default: the system temp dir, on disk)
	// VersityGW is the S3 server's binary (default: $PLASMA_TOOLS_BIN or
	// ~/.cache/plasma-tools/bin, then PATH); "none" skips S3.
	VersityGW string
}

// SetDefaults fills every zero field with its default.
func (c *ColdConfig) SetDefaults() {
	if c.Size == 0 {
		c.Size = 1 << 30
	}
	if c.Rounds == 0 {
		c.Rounds = 3
	}
	if c.Dir == "" {
		c.Dir = os.TempDir()
	}
}

// Cold measures spill (Evict of an unreferenced object, written to the
// tier) and restore (a Get, every group verified) of one object through
// a file:// tier and an S3 tier (versitygw on loopback), each beside the
// raw speed of the same medium in the same run, rounds alternating: dd of
// the same bytes from the store's shared memory to a file with fsync and
// back to /dev/null; a plain PUT (multipart, same part size and threads)
// and GET of the same bytes with the same S3 client. Rates are the best
// round of each.
func Cold(ctx context.Context, cfg ColdConfig, w io.Writer) (map[string]any, error) {
	cfg.SetDefaults()
	if err := notNegative(map[string]int{"--size": cfg.Size, "--rounds": cfg.Rounds}); err != nil {
		return nil, err
	}
	res := map[string]any{"bytes": cfg.Size, "rounds": cfg.Rounds}
	dir, err := os.MkdirTemp(cfg.Dir, "plasma-bench-cold-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	fileMedium := &coldMedium{name: "file", url: "file://" + filepath.Join(dir, "tier"), tierDir: filepath.Join(dir, "tier"),
		rawFile: filepath.Join(dir, "raw")}
	if err := coldRun(ctx, cfg, fileMedium, res); err != nil {
		return nil, fmt.Errorf("file:// tier: %w", err)
	}
	if cfg.VersityGW != "none" {
		stop, s3c, err := startVersityGW(ctx, cfg.VersityGW, filepath.Join(dir, "s3"))
		if err != nil {
			return nil, err
		}
		defer stop()
		s3Medium := &coldMedium{name: "s3", url: "s3://bench/tier", s3: s3c}
		if err := coldRun(ctx, cfg, s3Medium, res); err != nil {
			return nil, fmt.Errorf("s3:// tier: %w", err)
		}
	}
	res["restore_verified"] = true
	res["file_reads"] = "from disk: the page cache of the raw file and of the tier's blob is dropped (fadvise) before each read"
	printColdTable(w, res)
	return res, nil
}

// coldMedium is one tier and its raw counterpart.
type coldMedium struct {
	name, url string
	rawFile   string        // file: where dd writes
	tierDir   string        // file: the tier's directory
	s3        *minio.Client // s3: the plain client
}

// raw moves the object's bytes through the medium without the store:
// obj is the store's mapping of them, at off in the arena file.
func (m *coldMedium) rawWrite(ctx context.Context, c *store.Client, obj []byte, off uint64) error {
	if m.s3 == nil {
		cmd := exec.CommandContext(ctx, "dd", "if=/dev/fd/3", "of="+m.rawFile, "bs=16M", "iflag=skip_bytes,count_bytes",
			"skip="+strconv.FormatUint(off, 10), "count="+strconv.Itoa(len(obj)), "conv=fsync", "status=none")
		cmd.ExtraFiles = []*os.File{c.ArenaFile()}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("dd: %v: %s", err, out)
		}
		return nil
	}
	_, err := m.s3.PutObject(ctx, "bench", "raw", bytes.NewReader(obj), int64(len(obj)),
		minio.PutObjectOptions{PartSize: coldtier.DefaultPartSize, NumThreads: coldtier.DefaultConcurrency})
	return err
}

// uncache drops the page cache of a file of the file:// medium (written
// and fsynced, so its pages are clean), so that reading it reads the disk.
func (m *coldMedium) uncache(path string) error {
	if m.s3 == nil {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	}
	return nil
}

func (m *coldMedium) rawRead(ctx context.Context) error {
	if m.s3 == nil {
		if err := m.uncache(m.rawFile); err != nil {
			return err
		}
		out, err := exec.CommandContext(ctx, "dd", "if="+m.rawFile, "of=/dev/null", "bs=16M", "status=none").CombinedOutput()
		if err != nil {
			return fmt.Errorf("dd: %v: %s", err, out)
		}
		return nil
	}
	o, err := m.s3.GetObject(ctx, "bench", "raw", minio.GetObjectOptions{})
	if err != nil {
		return err
	}
	defer o.Close()
	_, err = io.Copy(io.Discard, o)
	return err
}

// coldRun runs the rounds of one medium with a store of its own.
func coldRun(ctx context.Context, cfg ColdConfig, m *coldMedium, res map[string]any) error {
	sock := filepath.Join(os.TempDir(), fmt.Sprintf("plasma-bench-cold-%d.sock", os.Getpid()))
	srv, err := storeserver.New(storeserver.Config{Socket: sock, Capacity: uint64(cfg.Size) + 64<<20,
		Cold: coldtier.Config{URL: m.url}})
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx) }()
	defer func() { stop(); <-served }()
	c, err := store.Connect(ctx, sock)
	if err != nil {
		return err
	}
	defer c.Close()
	src := make([]byte, cfg.Size)
	for i := range src {
		src[i] = byte(i * 31)
	}
	var spill, rawW, restore, rawR []time.Duration
	for r := range cfg.Rounds {
		src[0] = byte(r) // new bytes each round: the tier must not have them yet
		id, err := c.Put(ctx, src, nil)
		if err != nil {
			return err
		}
		digest, _, err := c.Outboard(ctx, id) // the background hasher's work, done before timing
		if err != nil {
			return err
		}
		obj, err := c.GetOne(ctx, id, 0)
		if err != nil {
			return err
		}
		off, err := offsetOf(ctx, c, id)
		if err != nil {
			return err
		}
		t0 := time.Now()
		err = m.rawWrite(ctx, c, obj.Data, off)
		rawW = append(rawW, time.Since(t0))
		c.Release(ctx, id)
		if err != nil {
			return fmt.Errorf("raw write: %w", err)
		}
		t0 = time.Now()
		if _, err := c.Evict(ctx, uint64(cfg.Size)+64<<20); err != nil {
			return err
		}
		spill = append(spill, time.Since(t0))
		if in, err := infoOf(ctx, c, id); err != nil || in.State != store.StateCold {
			return fmt.Errorf("object not spilled (state %q): %v", in.State, err)
		}
		t0 = time.Now()
		err = m.rawRead(ctx)
		rawR = append(rawR, time.Since(t0))
		if err != nil {
			return fmt.Errorf("raw read: %w", err)
		}
		if m.s3 == nil {
			if err := m.uncache(filepath.Join(m.tierDir, "blobs", hex.EncodeToString(digest[:]))); err != nil {
				return err
			}
		}
		t0 = time.Now()
		if _, err := c.GetOne(ctx, id, 0); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		restore = append(restore, time.Since(t0))
		c.Release(ctx, id)
		if obj, err := c.GetVerified(ctx, id, 0); err != nil {
			return fmt.Errorf("restored object: %w", err)
		} else if !bytes.Equal(obj.Data, src) {
			return fmt.Errorf("restored object differs from what was put")
		}
		c.Release(ctx, id)
		if _, err := c.Delete(ctx, id); err != nil {
			return err
		}
	}
	gbps := func(d []time.Duration) float64 {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(cfg.Size) / d[0].Seconds() / 1e9
	}
	p := m.name + "_"
	res[p+"spill_GBps"], res[p+"raw_write_GBps"] = gbps(spill), gbps(rawW)
	res[p+"restore_GBps"], res[p+"raw_read_GBps"] = gbps(restore), gbps(rawR)
	res[p+"spill_ratio"] = res[p+"spill_GBps"].(float64) / res[p+"raw_write_GBps"].(float64)
	res[p+"restore_ratio"] = res[p+"restore_GBps"].(float64) / res[p+"raw_read_GBps"].(float64)
	return nil
}

func infoOf(ctx context.Context, c *store.Client, id store.ObjectID) (store.ObjectInfo, error) {
	infos, err := c.List(ctx)
	if err != nil {
		return store.ObjectInfo{}, err
	}
	for _, in := range infos {
		if in.ID == id {
			return in, nil
		}
	}
	return store.ObjectInfo{}, fmt.Errorf("object %s not listed", id)
}

func offsetOf(ctx context.Context, c *store.Client, id store.ObjectID) (uint64, error) {
	in, err := infoOf(ctx, c, id)
	return in.Offset, err
}

// startVersityGW runs an S3 server over dir on a free loopback port with
// a bucket "bench", puts its credentials in this process's environment
// (where the tier reads them) and returns a plain client of it.
func startVersityGW(ctx context.Context, bin, dir string) (func(), *minio.Client, error) {
	if bin == "" {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, ".cache", "plasma-tools", "bin", "versitygw")
		if d := os.Getenv("PLASMA_TOOLS_BIN"); d != "" {
			bin = filepath.Join(d, "versitygw")
		}
		if !fileExists(bin) {
			var err error
			if bin, err = exec.LookPath("versitygw"); err != nil {
				return nil, nil, fmt.Errorf("versitygw (the S3 server of this benchmark) is not installed: run scripts/versitygw.sh, or give --versitygw none to skip S3")
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	const access, secret = "plasmabench", "plasmabenchsecret"
	cmd := exec.Command(bin, "--port", addr, "--access", access, "--secret", secret, "posix", dir)
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for _, kv := range [][2]string{{"AWS_ACCESS_KEY_ID", access}, {"AWS_SECRET_ACCESS_KEY", secret},
		{"AWS_ENDPOINT_URL", "http://" + addr}, {"AWS_REGION", "us-east-1"}} {
		os.Setenv(kv[0], kv[1])
	}
	c, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		stop()
		return nil, nil, err
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err = c.MakeBucket(ctx, "bench", minio.MakeBucketOptions{})
		if err == nil {
			return stop, c, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("versitygw at %s: %w", addr, err)
		}
	}
}

func printColdTable(w io.Writer, res map[string]any) {
	fmt.Fprintf(w, "%-6s %12s %12s %8s %12s %12s %8s\n", "tier", "spill GB/s", "raw write", "ratio", "restore GB/s", "raw read", "ratio")
	for _, m := range []string{"file", "s3"} {
		if _, ok := res[m+"_spill_GBps"]; !ok {
			continue
		}
		fmt.Fprintf(w, "%-6s %12.2f %12.2f %8.2f %12.2f %12.2f %8.2f\n", m, res[m+"_spill_GBps"], res[m+"_raw_write_GBps"],
			res[m+"_spill_ratio"], res[m+"_restore_GBps"], res[m+"_raw_read_GBps"], res[m+"_restore_ratio"])
	}
}
