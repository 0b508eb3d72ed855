package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/plasmastream/plasmastream/store"
)

// StoreConfig sizes the store benchmark.
type StoreConfig struct {
	Socket    string
	LargeSize int // bytes of the large object (default 256 MiB)
	Rounds    int // timed repetitions of each large operation (default 7)
	GetIters  int // Get+Release round trips per size (default 2000)
	Creates   int // small objects created and sealed (default 50000)
}

// SetDefaults fills every zero field with its default: the one place
// they are set (plasma bench's flags start from them).
func (c *StoreConfig) SetDefaults() {
	if c.LargeSize == 0 {
		c.LargeSize = 256 << 20
	}
	if c.Rounds == 0 {
		c.Rounds = 7
	}
	if c.GetIters == 0 {
		c.GetIters = 2000
	}
	if c.Creates == 0 {
		c.Creates = 50000
	}
}

// Validate reports the first bad value, naming its flag.
func (c *StoreConfig) Validate() error {
	return notNegative(map[string]int{"--large": c.LargeSize, "--rounds": c.Rounds, "--gets": c.GetIters, "--creates": c.Creates})
}

// notNegative reports the first (by name) of values that is negative.
func notNegative(values map[string]int) error {
	flags := make([]string, 0, len(values))
	for f := range values {
		flags = append(flags, f)
	}
	sort.Strings(flags)
	for _, f := range flags {
		if values[f] < 0 {
			return fmt.Errorf("%s %d: give a positive number (0: the default)", f, values[f])
		}
	}
	return nil
}

// Store measures the store: put throughput against memcpy, Get latency of
// a small and a large object, and small-object create+seal rate. It writes
// a table to w and returns the figures.
func Store(ctx context.Context, cfg StoreConfig, w io.Writer) (map[string]any, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// A long-lived writer maps the arena in the background (the stream
	// server does too); a second, default client below measures a first
	// put by a process that maps only what it writes.
	c, err := store.Connect(ctx, cfg.Socket, store.WithPrefault())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if need := uint64(3 * cfg.LargeSize); c.Capacity() < need {
		return nil, fmt.Errorf("the store at %s holds %d bytes; this benchmark needs %d (start it with -m 1GiB)", cfg.Socket, c.Capacity(), need)
	}
	res := map[string]any{"large_bytes": cfg.LargeSize}
	src := make([]byte, cfg.LargeSize)
	for i := range src {
		src[i] = byte(i * 31)
	}

	memcpy := medianRate(cfg.Rounds, cfg.LargeSize, func() (time.Duration, error) {
		dst := make([]byte, len(src))
		copy(dst, src) // touch every page first: measure the copy, not page faults
		start := time.Now()
		copy(dst, src)
		return time.Since(start), nil
	})
	putCold, putWarm, err := putRates(ctx, c, src, cfg.Rounds)
	if err != nil {
		return nil, err
	}
	res["memcpy_GBps"], res["put_GBps"], res["put_cold_GBps"] = round(memcpy), round(putWarm), round(putCold)
	res["put_ratio"] = round(putWarm / memcpy)
	res["put_cold_ratio"] = round(putCold / putWarm)
	putFresh, err := freshClientPut(ctx, cfg.Socket, src)
	if err != nil {
		return nil, err
	}
	res["put_fresh_client_GBps"], res["put_fresh_client_ratio"] = round(putFresh), round(putFresh/putWarm)

	small, large := make([]byte, 1024), src
	for name, data := range map[string][]byte{"small": small, "large": large} {
		p50, err := getLatency(ctx, c, data, cfg.GetIters)
		if err != nil {
			return nil, err
		}
		res["get_p50_us_"+name] = round(p50)
	}
	for name, fn := range map[string]func(context.Context, *store.Client, int) (float64, error){
		"create_seal_per_s":       createAndSealRate,
		"create_seal_batch_per_s": createAndSealBatchRate,
		"create_write_seal_per_s": createWriteSealRate,
	} {
		rate, err := fn(ctx, c, cfg.Creates)
		if err != nil {
			return nil, err
		}
		res[name] = int(rate)
	}
	redis, err := RedisGets(ctx, [][]byte{small, large}, cfg.GetIters)
	switch {
	case err != nil:
		res["redis"] = "error: " + err.Error()
	case redis != nil:
		res["redis_get_p50_us_small"], res["redis_get_p50_us_large"] = round(redis[0]), round(redis[1])
	}
	printStoreTable(w, res)
	return res, nil
}

// putRates times Put (create + write + seal) of src: the first round into
// never-touched shared memory (cold: page faults included) and the median
// of the rest, as a client that keeps using its store sees it.
func putRates(ctx context.Context, c *store.Client, src []byte, rounds int) (cold, warm float64, err error) {
	var times []time.Duration
	for range rounds + 1 {
		id := store.RandomObjectID()
		start := time.Now()
		if err := c.PutID(ctx, id, src, nil); err != nil {
			return 0, 0, fmt.Errorf("put of %d bytes: %w", len(src), err)
		}
		times = append(times, time.Since(start))
		if _, err := c.Delete(ctx, id); err != nil {
			return 0, 0, err
		}
	}
	gb := float64(len(src)) / 1e9
	return gb / times[0].Seconds(), gb / median(times[1:]).Seconds(), nil
}

// freshClientPut is the rate of one put by a client just connected
// without WithPrefault: it maps the object's range at Create.
func freshClientPut(ctx context.Context, socket string, src []byte) (float64, error) {
	c, err := store.Connect(ctx, socket)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	id := store.RandomObjectID()
	start := time.Now()
	if err := c.PutID(ctx, id, src, nil); err != nil {
		return 0, fmt.Errorf("put of %d bytes by a new client: %w", len(src), err)
	}
	took := time.Since(start)
	_, err = c.Delete(ctx, id)
	return float64(len(src)) / 1e9 / took.Seconds(), err
}

func getLatency(ctx context.Context, c *store.Client, data []byte, iters int) (float64, error) {
	id := store.RandomObjectID()
	if err := c.PutID(ctx, id, data, nil); err != nil {
		return 0, err
	}
	defer c.Delete(ctx, id)
	ids := []store.ObjectID{id}
	times := make([]time.Duration, 0, iters)
	for range iters {
		start := time.Now()
		objs, err := c.Get(ctx, ids, 0)
		if err != nil || objs[0] == nil {
			return 0, fmt.Errorf("get %s: %v", id, err)
		}
		if err := c.Release(ctx, id); err != nil {
			return 0, err
		}
		times = append(times, time.Since(start))
	}
	return float64(median(times).Nanoseconds()) / 1e3, nil
}

// createAndSealRate is the one-round-trip path (CreateAndSeal) for 1 KiB.
func createAndSealRate(ctx context.Context, c *store.Client, n int) (float64, error) {
	data := make([]byte, 1024)
	return smallRate(ctx, c, n, func(id store.ObjectID) error { return c.CreateAndSeal(ctx, id, data, nil) })
}

// createAndSealBatchRate stores n objects of 1 KiB with one
// CreateAndSealBatch (requests of about a megabyte each).
func createAndSealBatchRate(ctx context.Context, c *store.Client, n int) (float64, error) {
	data := make([]byte, 1024)
	ids := make([]store.ObjectID, n)
	objs := make([]store.BatchObject, n)
	for i := range objs {
		ids[i] = store.RandomObjectID()
		objs[i] = store.BatchObject{ID: ids[i], Data: data}
	}
	start := time.Now()
	errs, err := c.CreateAndSealBatch(ctx, objs)
	rate := float64(n) / time.Since(start).Seconds()
	if err == nil {
		err = errors.Join(errs...)
	}
	deleteAll(ctx, c, ids)
	return rate, err
}

// createWriteSealRate is the two-phase path: Create, write in shared
// memory, Seal, Release.
func createWriteSealRate(ctx context.Context, c *store.Client, n int) (float64, error) {
	return smallRate(ctx, c, n, func(id store.ObjectID) error {
		buf, err := c.Create(ctx, id, 1024, nil)
		if err != nil {
			return err
		}
		buf[0] = 1
		if err := c.Seal(ctx, id); err != nil {
			return err
		}
		return c.Release(ctx, id)
	})
}

func smallRate(ctx context.Context, c *store.Client, n int, put func(store.ObjectID) error) (float64, error) {
	ids := make([]store.ObjectID, n)
	for i := range ids {
		ids[i] = store.RandomObjectID()
	}
	start := time.Now()
	for _, id := range ids {
		if err := put(id); err != nil {
			return 0, err
		}
	}
	rate := float64(n) / time.Since(start).Seconds()
	deleteAll(ctx, c, ids)
	return rate, nil
}

func deleteAll(ctx context.Context, c *store.Client, ids []store.ObjectID) {
	for i := 0; i < len(ids); i += store.MaxGetIDs {
		c.Delete(ctx, ids[i:min(i+store.MaxGetIDs, len(ids))]...)
	}
}

func medianRate(rounds, size int, f func() (time.Duration, error)) float64 {
	var times []time.Duration
	for range rounds {
		d, _ := f()
		times = append(times, d)
	}
	return float64(size) / 1e9 / median(times).Seconds()
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func round(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

func printStoreTable(w io.Writer, r map[string]any) {
	fmt.Fprintf(w, "plasma store benchmark (large object: %d MiB)\n", r["large_bytes"].(int)>>20)
	fmt.Fprintf(w, "  %-38s %12v GB/s\n", "memcpy, one thread", r["memcpy_GBps"])
	fmt.Fprintf(w, "  %-38s %12v GB/s  (ratio %v)\n", "put (create+write+seal), warm", r["put_GBps"], r["put_ratio"])
	fmt.Fprintf(w, "  %-38s %12v GB/s  (÷ warm %v)\n", "put into untouched memory, cold", r["put_cold_GBps"], r["put_cold_ratio"])
	fmt.Fprintf(w, "  %-38s %12v GB/s  (÷ warm %v)\n", "first put by a new client", r["put_fresh_client_GBps"], r["put_fresh_client_ratio"])
	fmt.Fprintf(w, "  %-38s %12v µs\n", "get+release p50, 1 KiB", r["get_p50_us_small"])
	fmt.Fprintf(w, "  %-38s %12v µs\n", "get+release p50, large", r["get_p50_us_large"])
	fmt.Fprintf(w, "  %-38s %12v /s\n", "create-and-seal 1 KiB, one client", r["create_seal_per_s"])
	fmt.Fprintf(w, "  %-38s %12v /s\n", "create-and-seal 1 KiB, batched", r["create_seal_batch_per_s"])
	fmt.Fprintf(w, "  %-38s %12v /s\n", "create+write+seal+release 1 KiB", r["create_write_seal_per_s"])
	if v, ok := r["redis_get_p50_us_small"]; ok {
		fmt.Fprintf(w, "  %-38s %12v µs\n", "redis GET p50, 1 KiB (unix socket)", v)
		fmt.Fprintf(w, "  %-38s %12v µs\n", "redis GET p50, large (unix socket)", r["redis_get_p50_us_large"])
	} else if v, ok := r["redis"]; ok {
		fmt.Fprintf(w, "  redis comparison: %v\n", v)
	} else {
		fmt.Fprintf(w, "  redis comparison: redis-server not installed (apt-get install redis-server)\n")
	}
}
