package storeserver_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/coldtier"
	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// scrape reads the metrics at addr: series (name and labels as printed)
// to value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	r, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// The store's metrics follow real traffic: objects and bytes by state,
// requests by type with their latencies and errors, evictions, the
// digest backlog, clients; /healthz answers.
func TestStoreMetrics(t *testing.T) {
	srv := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 4 << 20, MetricsAddr: "127.0.0.1:0"})
	addr := srv.Server.MetricsAddr()
	ctx := context.Background()
	c := testutil.StoreClient(t, srv.Socket)
	want := func(m map[string]float64, series string, v float64) {
		t.Helper()
		if got, ok := m[series]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, v)
		}
	}
	m := scrape(t, addr)
	want(m, `plasma_store_capacity_bytes`, 4<<20)
	want(m, `plasma_store_objects{state="sealed"}`, 0)
	want(m, `plasma_store_clients`, 1)

	// One object being created, then sealed (64 KiB: it needs an outboard,
	// so the digester has it for at least a second).
	id := store.ObjectID{1}
	buf, err := c.Create(ctx, id, 64<<10, []byte("meta"))
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, testutil.Pattern(len(buf), 1))
	m = scrape(t, addr)
	want(m, `plasma_store_objects{state="creating"}`, 1)
	want(m, `plasma_store_object_bytes{state="creating"}`, 64<<10+4)
	if err := c.Seal(ctx, id); err != nil {
		t.Fatal(err)
	}
	m = scrape(t, addr)
	want(m, `plasma_store_objects{state="sealed"}`, 1)
	want(m, `plasma_store_objects{state="creating"}`, 0)
	want(m, `plasma_store_digest_backlog`, 1)
	want(m, `plasma_store_request_duration_seconds_count{type="Create"}`, 1)
	want(m, `plasma_store_request_duration_seconds_count{type="Seal"}`, 1)

	// Deleted while referenced: deleting until released.
	if _, err := c.Get(ctx, []store.ObjectID{id}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	m = scrape(t, addr)
	want(m, `plasma_store_objects{state="deleting"}`, 1)
	want(m, `plasma_store_request_duration_seconds_count{type="Get"}`, 1)
	for range 2 { // Create's reference and Get's
		if err := c.Release(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// A failed request counts as an error of its type.
	if err := c.Abort(ctx, store.ObjectID{9}); err == nil {
		t.Fatal("abort of an object never created succeeded")
	}
	// Filling the store twice over evicts.
	for i := range 16 {
		if err := c.CreateAndSealKeep(ctx, store.ObjectID{2, byte(i)}, testutil.Pattern(512<<10, byte(i)), nil, store.Digest{}); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		c.Release(ctx, store.ObjectID{2, byte(i)})
	}
	m = scrape(t, addr)
	want(m, `plasma_store_objects{state="deleting"}`, 0)
	want(m, `plasma_store_request_errors_total{type="Abort"}`, 1)
	if m[`plasma_store_evictions_total`] == 0 || m[`plasma_store_evicted_bytes_total`] < 512<<10 {
		t.Errorf("no eviction counted after 8 MiB into a 4 MiB store: %v, %v bytes", m[`plasma_store_evictions_total`], m[`plasma_store_evicted_bytes_total`])
	}
	if m[`plasma_store_used_bytes`] == 0 || m[`plasma_store_used_bytes`] > 4<<20 {
		t.Errorf("plasma_store_used_bytes = %v", m[`plasma_store_used_bytes`])
	}

	// The digester catches up.
	for deadline := time.Now().Add(20 * time.Second); scrape(t, addr)[`plasma_store_digest_backlog`] != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the digest backlog did not drain")
		}
	}
	r, err := http.Get("http://" + addr + "/healthz")
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("/healthz: %v %v", r, err)
	}
	r.Body.Close()
}

// A metrics address that cannot be bound is an error naming the flag,
// before anything is served.
func TestStoreMetricsAddrInUse(t *testing.T) {
	srv := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 1 << 20, MetricsAddr: "127.0.0.1:0"})
	_, err := storeserver.New(storeserver.Config{Capacity: 1 << 20, Socket: testutil.ShortDir(t) + "/s.sock", MetricsAddr: srv.Server.MetricsAddr()})
	if err == nil || !strings.Contains(err.Error(), "--metrics-addr "+srv.Server.MetricsAddr()) {
		t.Fatalf("second store on the same metrics address: %v", err)
	}
}

// Compactions are counted: half the store free in 64 KiB holes, a 512
// KiB object fits only after one.
func TestStoreMetricsCompactions(t *testing.T) {
	srv := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 1 << 20, MetricsAddr: "127.0.0.1:0"})
	addr := srv.Server.MetricsAddr()
	ctx := context.Background()
	c := testutil.StoreClient(t, srv.Socket)
	var drop []store.ObjectID
	for i := range 16 {
		id, err := c.Put(ctx, testutil.Pattern(64<<10-64, byte(i)), []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			drop = append(drop, id)
		}
	}
	if _, err := c.Delete(ctx, drop...); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, testutil.Pattern(512<<10, 99), nil); err != nil {
		t.Fatal(err)
	}
	m := scrape(t, addr)
	if m[`plasma_store_compactions_total`] < 1 || m[`plasma_store_compacted_bytes_total`] == 0 || m[`plasma_store_evictions_total`] != 0 {
		t.Errorf("compactions %v, compacted bytes %v, evictions %v: want a compaction that moved bytes and no eviction",
			m[`plasma_store_compactions_total`], m[`plasma_store_compacted_bytes_total`], m[`plasma_store_evictions_total`])
	}
}

// With a cold tier, spills and restores are counted, and the copies the
// tier holds are told apart by whether memory has them too.
func TestStoreMetricsSpillsAndRestores(t *testing.T) {
	m0 := fileMedium(t)
	srv := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 4 << 20, MetricsAddr: "127.0.0.1:0",
		Cold: coldtier.Config{URL: m0.url, PartSize: 5 << 20}, ColdTimeout: 30 * time.Second})
	addr := srv.Server.MetricsAddr()
	ctx := context.Background()
	c := testutil.StoreClient(t, srv.Socket)
	m := scrape(t, addr)
	for _, s := range []string{`plasma_store_spills_total{result="ok"}`, `plasma_store_spills_total{result="failed"}`,
		`plasma_store_restores_total{result="ok"}`, `plasma_store_cold_objects{where="cold_only"}`, `plasma_store_spilling_bytes`} {
		if v, ok := m[s]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v) before any spill, want 0", s, v, ok)
		}
	}
	const size = 512 << 10
	var ids []store.ObjectID
	for i := range 16 { // 8 MiB into 4 MiB: the first ones spill
		id, err := c.Put(ctx, testutil.Pattern(size, byte(i)), nil)
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	m = scrape(t, addr)
	spills := m[`plasma_store_spills_total{result="ok"}`]
	if spills < 8 || m[`plasma_store_spilled_bytes_total`] != spills*size {
		t.Errorf("after 8 MiB into 4 MiB: %v spills of %v bytes, want at least 8 of %d bytes each", spills, m[`plasma_store_spilled_bytes_total`], size)
	}
	if m[`plasma_store_spills_total{result="failed"}`] != 0 {
		t.Errorf("failed spills: %v", m[`plasma_store_spills_total{result="failed"}`])
	}
	coldOnly := m[`plasma_store_cold_objects{where="cold_only"}`]
	if coldOnly < 8 || m[`plasma_store_cold_bytes{where="cold_only"}`] != coldOnly*size {
		t.Errorf("cold-only copies: %v objects, %v bytes", coldOnly, m[`plasma_store_cold_bytes{where="cold_only"}`])
	}

	// A Get of the first object restores it.
	if _, _, err := getBytes(ctx, c, ids[0]); err != nil {
		t.Fatal(err)
	}
	m = scrape(t, addr)
	if m[`plasma_store_restores_total{result="ok"}`] != 1 || m[`plasma_store_restored_bytes_total`] != size {
		t.Errorf("after one restore: %v restores of %v bytes", m[`plasma_store_restores_total{result="ok"}`], m[`plasma_store_restored_bytes_total`])
	}
	if m[`plasma_store_cold_objects{where="in_memory"}`] < 1 {
		t.Errorf("the restored object's copy is not counted as in memory too: %v", m[`plasma_store_cold_objects{where="in_memory"}`])
	}
}
