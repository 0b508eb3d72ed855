package streaming_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
	"github.com/plasmastream/plasmastream/streaming"
)

var bg = context.Background()

// change is one change as the tests compare them.
type change struct {
	store, op, key string // op: set, deleted, evicted
}

// changesOf turns pairs into changes, decoding `objects` deletes' reasons
// and dropping a set that repeats the previous set of the same key (a
// digest learned after the seal).
func changesOf(t testing.TB, pairs []kv, seen map[string]string) []change {
	t.Helper()
	var out []change
	for _, p := range pairs {
		c := change{store: p.store, op: "set", key: fmt.Sprintf("%x", p.key)}
		if p.delete {
			c.op = "deleted"
			if p.store == streaming.StoreObjects {
				var r streaming.ObjectRemoval
				if err := r.Decode(p.value); err != nil {
					t.Fatal(err)
				}
				c.op = map[uint64]string{streaming.RemovedDeleted: "deleted", streaming.RemovedEvicted: "evicted"}[r.Reason]
			}
		}
		k := c.store + "/" + c.key
		if c.op == "set" && seen[k] == "set" && c.store == streaming.StoreObjects {
			continue
		}
		seen[k] = c.op
		out = append(out, c)
	}
	return out
}

// fileChanges reads the changes of prefix's blocks in dir.
func fileChanges(t testing.TB, dir, prefix string) ([]change, []fileBlock) {
	t.Helper()
	blocks := readBlockFiles(t, dir, prefix)
	seen := map[string]string{}
	var out []change
	for _, b := range blocks {
		out = append(out, changesOf(t, b.pairs, seen)...)
	}
	return out, blocks
}

// natsChanges reads node's blocks from the stream at url.
func natsChanges(t testing.TB, url, node string) ([]change, []*streaming.ReadBlock) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	r, err := streaming.OpenNATS(ctx, url, streaming.NATSReaderConfig{Node: node})
	if err != nil {
		t.Fatalf("open NATS stream at %s: %v", url, err)
	}
	defer r.Close()
	var blocks []*streaming.ReadBlock
	if err := r.ReadFrom(ctx, 0, false, func(b *streaming.ReadBlock) error {
		blocks = append(blocks, b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	var out []change
	for _, b := range blocks {
		var pairs []kv
		for _, p := range b.Pairs {
			pairs = append(pairs, kv{store: p.StoreKey, delete: p.Delete, key: p.Key, value: p.Value})
		}
		out = append(out, changesOf(t, pairs, seen)...)
	}
	return out, blocks
}

// objectsChanges keeps the `objects` changes.
func objectsChanges(cs []change) []change {
	return slices.DeleteFunc(slices.Clone(cs), func(c change) bool { return c.store != streaming.StoreObjects })
}

// waitFor polls get until ok holds, or fails after 30 s with what it saw.
func waitFor[T any](t testing.TB, what string, get func() T, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := get()
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 30s; last seen: %+v", what, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func put(t testing.TB, c *store.Client, data, meta string) store.ObjectID {
	t.Helper()
	id, err := c.Put(bg, []byte(data), []byte(meta))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func hexID(id store.ObjectID) string { return fmt.Sprintf("%x", id[:]) }

// Puts, a delete, COPY, TAKE and an eviction on two nodes: every change
// reaches both nodes' files and the NATS stream, in order, nothing
// missing; the files decode with the independent decoder.
func TestStateStreamTwoNodes(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	natsAddr := testutil.FreeAddr(t)
	natsURL := "nats://" + natsAddr
	// Node a reads its streaming options from a TOML file.
	conf := filepath.Join(t.TempDir(), "a.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`
[store]
streamers = ["file", "nats"]
block-interval = "50ms"

[streamers.file]
keys = ["*"]
write_dir = %q
prefix = "node-a"
output-metadata = true
stop-node-on-error = true
fsync = true

[streamers.nats]
keys = ["objects", "transfers"]
`, dirA)), 0o600)
	a := testutil.StartNode(t, "a", "64MiB", "--config", conf, "--nats", "embedded", "--nats-listen", natsAddr, "--nats-dir", t.TempDir())
	b := testutil.StartNode(t, "b", "64MiB", "--store.streamers", "file,nats", "--store.block-interval", "50ms",
		"--streamers.file.write_dir", dirB, "--streamers.file.fsync=false", "--nats", natsURL)

	ca, cb := testutil.StoreClient(t, a.Socket), testutil.StoreClient(t, b.Socket)
	id1 := put(t, ca, "one", "meta-one")
	id2 := put(t, ca, "two", "")
	id3 := put(t, ca, "three", "meta-three")
	id4 := put(t, ca, "four", "")
	if _, err := ca.Delete(bg, id2); err != nil {
		t.Fatal(err)
	}
	sc, err := stream.Connect(bg, b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	res, err := sc.Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: a.Addr, Objects: []stream.ObjectID{id3}}})
	if err != nil || res.Status != stream.StatusOK {
		t.Fatalf("COPY: %+v %v", res, err)
	}
	res, err = sc.Sync(bg, []stream.PeerRequest{{Kind: stream.Take, From: a.Addr, Objects: []stream.ObjectID{id4}}})
	if err != nil || res.Status != stream.StatusOK {
		t.Fatalf("TAKE: %+v %v", res, err)
	}
	waitFor(t, "TAKE deleted at the source", func() bool { ok, _ := ca.Contains(bg, id4); return ok }, func(ok bool) bool { return !ok })
	if n, err := cb.Evict(bg, 1); err != nil || n == 0 {
		t.Fatalf("evict on b: %d bytes, %v", n, err)
	}
	var evicted store.ObjectID
	for _, id := range []store.ObjectID{id3, id4} {
		if ok, _ := cb.Contains(bg, id); !ok {
			evicted = id
		}
	}
	if evicted == (store.ObjectID{}) {
		t.Fatal("the eviction on b removed neither object")
	}

	wantA := []change{
		{"objects", "set", hexID(id1)}, {"objects", "set", hexID(id2)}, {"objects", "set", hexID(id3)}, {"objects", "set", hexID(id4)},
		{"objects", "deleted", hexID(id2)}, {"objects", "deleted", hexID(id4)},
	}
	wantB := []change{{"objects", "set", hexID(id3)}, {"objects", "set", hexID(id4)}, {"objects", "evicted", hexID(evicted)}}
	complete := func(want []change) func([]change) bool {
		return func(got []change) bool { return slices.Equal(objectsChanges(got), want) }
	}
	for _, src := range []struct {
		name string
		get  func(node string) []change
	}{
		{"files", func(node string) []change {
			dir, prefix := dirA, "node-a"
			if node == "b" {
				dir, prefix = dirB, ""
			}
			cs, _ := fileChanges(t, dir, prefix)
			return cs
		}},
		{"NATS", func(node string) []change { cs, _ := natsChanges(t, natsURL, node); return cs }},
	} {
		waitFor(t, src.name+" of node a", func() []change { return src.get("a") }, complete(wantA))
		waitFor(t, src.name+" of node b", func() []change { return src.get("b") }, complete(wantB))
		// Transfers: two out of a, two into b, after the objects moved.
		tr := func(cs []change) int {
			return len(slices.DeleteFunc(slices.Clone(cs), func(c change) bool { return c.store != streaming.StoreTransfers }))
		}
		waitFor(t, src.name+" transfers", func() [2]int { return [2]int{tr(src.get("a")), tr(src.get("b"))} },
			func(n [2]int) bool { return n == [2]int{2, 2} })
	}

	// The values: id1's info, b's transfers with per-object status.
	_, blocks := fileChanges(t, dirA, "node-a")
	if !blocks[0].start || !blocks[0].snapshot {
		t.Fatalf("the first block of a is %+v, want start and snapshot", blocks[0].meta)
	}
	var info streaming.ObjectInfo
	var transfersB []streaming.Transfer
	for _, bl := range blocks {
		for _, p := range bl.pairs {
			if p.store == "objects" && !p.delete && bytes.Equal(p.key, id1[:]) {
				if err := info.Decode(p.value); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if string(info.Metadata) != "meta-one" || info.DataSize != 3 || info.CreatorPID != uint32(os.Getpid()) || info.Created.IsZero() {
		t.Fatalf("id1's info: %+v", info)
	}
	_, blocksB := fileChanges(t, dirB, "")
	for _, bl := range blocksB {
		for _, p := range bl.pairs {
			if p.store == "transfers" {
				var tr streaming.Transfer
				if err := tr.Decode(p.value); err != nil {
					t.Fatal(err)
				}
				transfersB = append(transfersB, tr)
			}
		}
	}
	if len(transfersB) != 2 || transfersB[0].Kind != "COPY" || transfersB[1].Kind != "TAKE" || transfersB[0].Direction != "in" ||
		transfersB[0].Peer != a.Addr || len(transfersB[1].Objects) != 1 || !bytes.Equal(transfersB[1].Objects[0].ID, id4[:]) ||
		transfersB[1].Objects[0].Status != "ok" || transfersB[1].Bytes != 4 {
		t.Fatalf("b's transfers: %+v", transfersB)
	}
	// NATS carries only what its keys name: no cluster stores.
	_, nb := natsChanges(t, natsURL, "a")
	for _, bl := range nb {
		for _, p := range bl.Pairs {
			if p.StoreKey != "objects" && p.StoreKey != "transfers" {
				t.Fatalf("NATS carries store %q, not in its keys", p.StoreKey)
			}
		}
	}
	// plasma state read prints the same blocks.
	out, err := testutil.RunBinary(t, "plasma", "state", "read", dirB, "--json")
	if err != nil || !strings.Contains(out, hexID(id3)) || !strings.Contains(out, `"reason":"evicted"`) {
		t.Fatalf("plasma state read: %v\n%s", err, out)
	}
	out, err = testutil.RunBinary(t, "plasma", "state", "read", natsURL, "--node", "a", "--from", "2")
	if err != nil || !strings.Contains(out, hexID(id1)) || strings.Contains(out, "block 1 ") {
		t.Fatalf("plasma state read %s --from 2: %v\n%s", natsURL, err, out)
	}
}
