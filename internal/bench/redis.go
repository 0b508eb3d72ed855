package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisGets measures GET latency (p50, µs) of each value in a throwaway
// redis-server on a unix socket, for comparison with the store's Get. It
// returns nil, nil when redis-server is not installed.
func RedisGets(ctx context.Context, values [][]byte, iters int) ([]float64, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, nil
	}
	dir, err := os.MkdirTemp("", "psredis")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.CommandContext(ctx, bin, "--port", "0", "--unixsocket", sock, "--save", "",
		"--appendonly", "no", "--dir", dir, "--proto-max-bulk-len", "1gb", "--client-query-buffer-limit", "1gb")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := waitUnix(sock, 10*time.Second); err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	rc := redis.NewClient(&redis.Options{Network: "unix", Addr: sock, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	defer rc.Close()
	out := make([]float64, len(values))
	for i, v := range values {
		key := fmt.Sprint("k", i)
		if err := rc.Set(ctx, key, v, 0).Err(); err != nil {
			return nil, fmt.Errorf("redis SET of %d bytes: %w", len(v), err)
		}
		n := iters
		if len(v) > 1<<20 {
			n = min(iters, 15) // each GET copies the whole value twice
		}
		times := make([]time.Duration, 0, n)
		for range n {
			start := time.Now()
			if _, err := rc.Get(ctx, key).Bytes(); err != nil {
				return nil, err
			}
			times = append(times, time.Since(start))
		}
		out[i] = float64(median(times).Nanoseconds()) / 1e3
	}
	return out, nil
}

func waitUnix(sock string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("not listening on %s after %s", sock, timeout)
}
