package stream_test

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/stream"
)

// A cluster FETCH reads an object from the cold tier the stores share
// when no node holds it in memory any more: node a persisted it and died;
// node b's FETCH restores it from the bucket, verified.
func TestFetchFromSharedColdTier(t *testing.T) {
	tier := "file://" + filepath.Join(t.TempDir(), "cold")
	etcd := testutil.FreeAddr(t)
	// b runs the embedded etcd: a is the node that dies.
	sockB, _ := testutil.StartStoreProcess(t, "32MiB", "-e", tier, "--cold-shared")
	_, addrB := testutil.StartStreamServer(t, "b", sockB, "127.0.0.1", "--etcd", "embedded", "--etcd-dir", filepath.Join(t.TempDir(), "etcd"),
		"--etcd-listen", etcd, "--lease-ttl", "2s")
	sockA, storeA := testutil.StartStoreProcess(t, "32MiB", "-e", tier, "--cold-shared")
	streamA, _ := testutil.StartStreamServer(t, "a", sockA, "127.0.0.1", "--etcd", "http://"+etcd, "--lease-ttl", "2s")

	data := testutil.Pattern(3<<20, 61)
	ca := testutil.StoreClient(t, sockA)
	id, err := ca.Put(bg, data, []byte("cold"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Persist(bg, id); err != nil {
		t.Fatal(err)
	}
	cb := streamClient(t, addrB)
	waitHolders(t, cb, id, "[a]")
	// Node a dies, store and stream server: nothing holds the object in
	// memory, and its location goes with a's lease.
	streamA.Process.Signal(syscall.SIGKILL)
	storeA.Process.Signal(syscall.SIGKILL)
	waitHolders(t, cb, id, "[]")

	if _, err := cb.Fetch(bg, []stream.ObjectID{id}); err != nil {
		t.Fatalf("fetch of an object only the shared cold tier holds: %v", err)
	}
	mustHave(t, sockB, id, data, []byte("cold"))
}
