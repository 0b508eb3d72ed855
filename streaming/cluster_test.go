package streaming_test

import (
	"os"
	"slices"
	"testing"

	"github.com/plasmastream/plasmastream/internal/testutil"
)

// In a cluster, the directory as a node sees it streams too: the nodes,
// groups and locations stores follow other nodes joining, sealing and
// leaving.
func TestStateStreamCluster(t *testing.T) {
	dir := t.TempDir()
	etcd := testutil.FreeAddr(t)
	sockA, _ := testutil.StartStoreProcess(t, "64MiB")
	startServer(t, sockA, "a", "--etcd", "embedded", "--etcd-dir", t.TempDir(), "--etcd-listen", etcd, "--group", "g1",
		"--store.streamers", "file", "--store.block-interval", "20ms", "--streamers.file.write_dir", dir,
		"--streamers.file.keys", "nodes,groups,locations")
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
	b.cmd.Process.Signal(os.Interrupt) // leaves: its registration is revoked
	<-b.exited
	cs := waitFor(t, "b leaving, in a's blocks", read, has(change{"nodes", "deleted", hexOf("b")}, change{"locations", "deleted", hexOf(loc)}))
	for _, c := range cs {
		if c.store == "objects" || c.store == "transfers" {
			t.Fatalf("store %s streamed, not in streamers.file.keys", c.store)
		}
	}
}

func hexOf(s string) string { return hexID2([]byte(s)) }
