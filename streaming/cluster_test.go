package streaming_test

import (
	"bytes"
	"os"
	"slices"
	"testing"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/stream"
	"github.com/plasmastream/plasmastream/streaming"
)

// In a cluster, the directory as a node sees it streams too: the nodes,
// groups and locations stores follow other nodes joining, sealing and
// leaving.
func TestStateStreamCluster(t *testing.T) {
	dir := t.TempDir()
	etcd := testutil.FreeAddr(t)
	sockA, _ := testutil.StartStoreProcess(t, "64MiB")
	a := startServer(t, sockA, "a", "--etcd", "embedded", "--etcd-dir", t.TempDir(), "--etcd-listen", etcd, "--group", "g1",
		"--store.streamers", "file", "--store.block-interval", "20ms", "--streamers.file.write_dir", dir,
		"--streamers.file.keys", "nodes,groups,locations,transfers")
	sockB, _ := testutil.StartStoreProcess(t, "64MiB")
	b := startServer(t, sockB, "b", "--etcd", "http://"+etcd)
	id := put(t, testutil.StoreClient(t, sockB), "on b", "")
	loc := hexID(id) + "/b"
	has := func(want ...change) func([]change) bool {
		return func(got []change) bool {
			for _, w := range want {
				if !slices.Contains(got, w) {
					return false
				}
			}
			return true
		}
	}
	read := func() []change { cs, _ := fileChanges(t, dir, ""); return cs }
	waitFor(t, "the directory in a's blocks", read, has(
		change{"nodes", "set", hexOf("a")}, change{"nodes", "set", hexOf("b")}, change{"groups", "set", hexOf("g1/a")},
		change{"locations", "set", hexOf(loc)}))
	// a fetches the object from b: a transfer into a, of kind FETCH.
	sc, err := stream.Connect(bg, a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if r, err := sc.Fetch(bg, []stream.ObjectID{id}); err != nil || r.Status != stream.StatusOK {
		t.Fatalf("FETCH: %+v %v", r, err)
	}
	fetch := waitFor(t, "the FETCH in a's transfers", func() *streaming.Transfer {
		_, blocks := fileChanges(t, dir, "")
		for _, bl := range blocks {
			for _, p := range bl.pairs {
				var tr streaming.Transfer
				if p.store == "transfers" && tr.Decode(p.value) == nil && tr.Kind == "FETCH" {
					return &tr
				}
			}
		}
		return nil
	}, func(tr *streaming.Transfer) bool { return tr != nil })
	if fetch.Direction != "in" || len(fetch.Objects) != 1 || !bytes.Equal(fetch.Objects[0].ID, id[:]) || fetch.Objects[0].Bytes != 4 {
		t.Fatalf("the FETCH recorded: %+v", fetch)
	}
	b.cmd.Process.Signal(os.Interrupt) // leaves: its registration is revoked
	<-b.exited
	cs := waitFor(t, "b leaving, in a's blocks", read, has(change{"nodes", "deleted", hexOf("b")}, change{"locations", "deleted", hexOf(loc)}))
	for _, c := range cs {
		if c.store == "objects" {
			t.Fatalf("store %s streamed, not in streamers.file.keys", c.store)
		}
	}
}

func hexOf(s string) string { return hexID2([]byte(s)) }
