package storeserver_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/coldtier"
	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// coldMedium is a cold tier for a test: its URL and where the file of a
// key under the tier's root is, for damaging it.
type coldMedium struct {
	url  string
	file func(key string) string
	s3   *testutil.S3 // nil for file://
}

func fileMedium(t *testing.T) coldMedium {
	dir := t.TempDir()
	return coldMedium{url: "file://" + dir, file: func(k string) string { return filepath.Join(dir, filepath.FromSlash(k)) }}
}

func s3Medium(t *testing.T) coldMedium {
	s := testutil.StartS3(t)
	return coldMedium{url: s.URL("tier"), file: func(k string) string { return s.File("tier/" + k) }, s3: s}
}

var media = []struct {
	name string
	open func(*testing.T) coldMedium
}{{"file", fileMedium}, {"s3", s3Medium}}

func coldStore(t *testing.T, m coldMedium, capacity uint64) *testutil.Store {
	t.Helper()
	return testutil.StartStoreConfig(t, storeserver.Config{Capacity: capacity, Cold: coldtier.Config{URL: m.url, PartSize: 5 << 20},
		ColdTimeout: 30 * time.Second})
}

func infoOf(t *testing.T, c *store.Client, id store.ObjectID) (store.ObjectInfo, bool) {
	t.Helper()
	for _, in := range lastUses(t, c) {
		if in.ID == id {
			return in, true
		}
	}
	return store.ObjectInfo{}, false
}

// putCold puts data, persists it and evicts everything: the object is
// then in the cold tier only.
func putCold(t *testing.T, c *store.Client, data []byte) store.ObjectID {
	t.Helper()
	ctx := context.Background()
	id, err := c.Put(ctx, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Persist(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Evict(ctx, 1<<40); err != nil {
		t.Fatal(err)
	}
	return id
}

func getBytes(ctx context.Context, c *store.Client, id store.ObjectID) ([]byte, []byte, error) {
	obj, err := c.GetOne(ctx, id, 0)
	if err != nil {
		return nil, nil, err
	}
	defer c.Release(ctx, id)
	return bytes.Clone(obj.Data), bytes.Clone(obj.Metadata), nil
}

// An object evicted to make room is written to the cold tier first, shown
// as cold, and a Get (even a poll) restores it byte for byte, with its
// metadata; concurrent Gets of it all get it.
func TestColdSpillAndRestore(t *testing.T) {
	for _, md := range media {
		t.Run(md.name, func(t *testing.T) {
			m := md.open(t)
			s := coldStore(t, m, 16<<20)
			c := testutil.StoreClient(t, s.Socket)
			ctx := context.Background()
			a := testutil.Pattern(11<<20+123, 1) // several parts and a short one
			idA, err := c.Put(ctx, a, []byte("meta-a"))
			if err != nil {
				t.Fatal(err)
			}
			idB, err := c.Put(ctx, testutil.Pattern(10<<20, 2), nil) // A must go
			if err != nil {
				t.Fatal(err)
			}
			if in, ok := infoOf(t, c, idA); !ok || in.State != store.StateCold || !in.Cold || in.DataSize != uint64(len(a)) {
				t.Fatalf("A after the spill: %+v (listed %v), want state cold", in, ok)
			}
			if has, _ := c.Contains(ctx, idA); !has {
				t.Fatal("Contains of a cold object: false")
			}
			var wg sync.WaitGroup
			errs := make([]error, 3)
			for i := range errs {
				wg.Go(func() {
					cc := testutil.StoreClient(t, s.Socket)
					data, meta, err := getBytes(ctx, cc, idA)
					if err == nil && (!bytes.Equal(data, a) || string(meta) != "meta-a") {
						err = errors.New("restored bytes differ")
					}
					errs[i] = err
				})
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if in, _ := infoOf(t, c, idA); in.State != store.StateSealed || !in.Cold {
				t.Fatalf("A after the restore: %+v, want sealed with a cold copy", in)
			}
			if in, _ := infoOf(t, c, idB); in.State != store.StateCold {
				t.Fatalf("B after A's restore: %+v, want cold", in)
			}
		})
	}
}

// A byte flipped in the tier's copy is found on restore: the Get fails
// with ErrColdTier naming the group, nothing is served, and the store
// goes on serving.
func TestColdCorruptionDetected(t *testing.T) {
	for _, md := range media {
		t.Run(md.name, func(t *testing.T) {
			m := md.open(t)
			s := coldStore(t, m, 8<<20)
			c := testutil.StoreClient(t, s.Socket)
			ctx := context.Background()
			idA := putCold(t, c, testutil.Pattern(1<<20, 3))
			in, _ := infoOf(t, c, idA)
			path := m.file("blobs/" + hex.EncodeToString(in.Digest[:]))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[700_000] ^= 0x40
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err = getBytes(ctx, c, idA)
			if !errors.Is(err, store.ErrColdTier) || !bytes.Contains([]byte(err.Error()), []byte("corrupt")) {
				t.Fatalf("get of a corrupted cold object: %v, want ErrColdTier naming the corruption", err)
			}
			if _, err := c.Put(ctx, []byte("still serving"), nil); err != nil {
				t.Fatalf("put after the failed restore: %v", err)
			}
			if in, ok := infoOf(t, c, idA); !ok || in.State != store.StateCold {
				t.Fatalf("after the failed restore: %+v, want still listed as cold", in)
			}
		})
	}
}

// rm deletes an object's copy in the tier too, and a persisted object
// survives eviction with its bytes.
func TestColdDeleteRemovesCopy(t *testing.T) {
	for _, md := range media {
		t.Run(md.name, func(t *testing.T) {
			m := md.open(t)
			s := coldStore(t, m, 8<<20)
			c := testutil.StoreClient(t, s.Socket)
			ctx := context.Background()
			id, err := c.Put(ctx, testutil.Pattern(100<<10, 4), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Persist(ctx, id); err != nil {
				t.Fatal(err)
			}
			in, _ := infoOf(t, c, id)
			if _, err := os.Stat(m.file("objects/" + id.String() + ".rec")); err != nil {
				t.Fatalf("record after persist: %v", err)
			}
			if _, err := c.Evict(ctx, 8<<20); err != nil {
				t.Fatal(err)
			}
			errs, err := c.Delete(ctx, id)
			if err != nil || errs[0] != nil {
				t.Fatalf("delete of a cold object: %v %v", err, errs)
			}
			for _, k := range []string{"objects/" + id.String() + ".rec", "blobs/" + hex.EncodeToString(in.Digest[:])} {
				if _, err := os.Stat(m.file(k)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s after delete: %v, want gone", k, err)
				}
			}
			if _, ok := infoOf(t, c, id); ok {
				t.Fatal("deleted object still listed")
			}
			if _, err := c.GetOne(ctx, id, 0); !errors.Is(err, store.ErrObjectNotFound) {
				t.Fatalf("get of a deleted object: %v", err)
			}
		})
	}
}
