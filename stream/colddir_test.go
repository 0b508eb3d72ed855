package stream_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/stream"
)

// The directory records cold copies: node a's store persists one object
// and spills another to a tier that node b's store uses too (b without
// --cold-shared); LOCATE on b shows both cold, written by a. Node a dies;
// a FETCH on b restores both from the tier (b's store adopts their
// records), with progress; a FETCH on c, whose store uses another tier,
// fails naming the object, the tier and the flag to give; deleting on b
// deletes the tier's copy and the cold record. Over a directory and over
// S3.
func TestColdCopiesInTheDirectory(t *testing.T) {
	for _, medium := range []struct {
		name string
		tier func(t *testing.T) string
	}{
		{"file", func(t *testing.T) string { return "file://" + filepath.Join(t.TempDir(), "cold") }},
		{"s3", func(t *testing.T) string { return testutil.StartS3(t).URL("shared") }},
	} {
		t.Run(medium.name, func(t *testing.T) {
			tier := medium.tier(t)
			etcd := testutil.FreeAddr(t)
			sockB, _ := testutil.StartStoreProcess(t, "32MiB", "-e", tier)
			metricsB := testutil.FreeAddr(t)
			_, addrB := testutil.StartStreamServer(t, "b", sockB, "127.0.0.1", "--etcd", "embedded", "--etcd-dir", filepath.Join(t.TempDir(), "etcd"),
				"--etcd-listen", etcd, "--lease-ttl", "2s", "--metrics-addr", metricsB)
			sockA, storeA := testutil.StartStoreProcess(t, "32MiB", "-e", tier)
			streamA, _ := testutil.StartStreamServer(t, "a", sockA, "127.0.0.1", "--etcd", "http://"+etcd, "--lease-ttl", "2s")
			other := "file://" + filepath.Join(t.TempDir(), "other")
			sockC, _ := testutil.StartStoreProcess(t, "32MiB", "-e", other)
			_, addrC := testutil.StartStreamServer(t, "c", sockC, "127.0.0.1", "--etcd", "http://"+etcd, "--lease-ttl", "2s")

			ca := testutil.StoreClient(t, sockA)
			persisted, spilled := testutil.Pattern(3<<20, 61), testutil.Pattern(2<<20, 62)
			idP, err := ca.Put(bg, persisted, []byte("persisted"))
			if err != nil {
				t.Fatal(err)
			}
			if err := ca.Persist(bg, idP); err != nil {
				t.Fatal(err)
			}
			idS, err := ca.Put(bg, spilled, []byte("spilled"))
			if err != nil {
				t.Fatal(err)
			}
			// A third object's copy will vanish from the tier behind the
			// stores' backs (a file:// tier: its record file removed).
			idX, err := ca.Put(bg, testutil.Pattern(1<<20, 63), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := ca.Persist(bg, idX); err != nil {
				t.Fatal(err)
			}
			cb := streamClient(t, addrB)
			waitPlacement(t, cb, idX, "[a] cold: "+tier+" (written by a)")
			waitPlacement(t, cb, idP, "[a] cold: "+tier+" (written by a)")
			waitPlacement(t, cb, idS, "[a]")
			if _, err := ca.Evict(bg, 1<<30); err != nil { // idS is spilled, idP was in the tier already
				t.Fatal(err)
			}
			waitPlacement(t, cb, idP, "[] cold: "+tier+" (written by a)")
			waitPlacement(t, cb, idS, "[] cold: "+tier+" (written by a)")

			// Node a dies: nothing holds either object in memory; the
			// cold records outlive its lease.
			streamA.Process.Signal(syscall.SIGKILL)
			storeA.Process.Signal(syscall.SIGKILL)
			time.Sleep(3 * time.Second) // past a's lease
			waitPlacement(t, cb, idP, "[] cold: "+tier+" (written by a)")
			// The dashboard's locate shows the cold copy too.
			var located struct {
				Holders []stream.Location `json:"holders"`
				Cold    []stream.ColdCopy `json:"cold"`
			}
			getJSON(t, "http://"+metricsB+"/api/locate?id="+idP.String(), &located)
			if len(located.Holders) != 0 || len(located.Cold) != 1 || located.Cold[0].Tier != tier || located.Cold[0].Node != "a" {
				t.Errorf("/api/locate: %+v, want no holder and a's cold copy in %s", located, tier)
			}

			// c's store uses another tier: a clear error.
			_, err = streamClient(t, addrC).Fetch(bg, []stream.ObjectID{idP})
			if err == nil {
				t.Fatal("FETCH on a node whose store uses another cold tier succeeded")
			}
			for _, want := range []string{idP.String(), tier, "-e " + tier, other} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("FETCH on c: %q does not say %q", err, want)
				}
			}

			// The record of a copy the tier no longer has is stale: a
			// FETCH on a node of that tier says so and removes it.
			if medium.name == "file" {
				if err := os.Remove(filepath.Join(strings.TrimPrefix(tier, "file://"), "objects", idX.String()+".rec")); err != nil {
					t.Fatal(err)
				}
				_, err := cb.Fetch(bg, []stream.ObjectID{idX})
				if err == nil || !strings.Contains(err.Error(), "stale record is removed") {
					t.Fatalf("FETCH of an object whose tier copy vanished: %v, want the stale record removed", err)
				}
				waitPlacement(t, cb, idX, "[]")
			}

			want := uint64(len(persisted) + len(spilled) + len("persisted") + len("spilled"))
			res, err := cb.FetchProgress(bg, []stream.ObjectID{idP, idS}, func(p stream.Progress) {
				// Frames come at most a few times a second: a fast
				// restore may end before the first.
				if p.Bytes > p.BytesAnnounced || p.BytesAnnounced > want {
					t.Errorf("progress %+v of %d bytes", p, want)
				}
			})
			if err != nil {
				t.Fatalf("fetch of objects only the cold tier holds: %v", err)
			}
			if res.Bytes != want {
				t.Errorf("fetch reported %d bytes, want %d", res.Bytes, want)
			}
			mustHave(t, sockB, idP, persisted, []byte("persisted"))
			mustHave(t, sockB, idS, spilled, []byte("spilled"))
			waitPlacement(t, cb, idP, "[b] cold: "+tier+" (written by a)")

			// rm on b deletes the tier's copy, and the record with it.
			if errs, err := testutil.StoreClient(t, sockB).Delete(bg, idP); err != nil || errs[0] != nil {
				t.Fatalf("delete on b: %v %v", err, errs)
			}
			waitPlacement(t, cb, idP, "[]")
			waitPlacement(t, cb, idS, "[b] cold: "+tier+" (written by a)")
		})
	}
}

// waitPlacement waits until LOCATE shows id as want: the holders, then
// each cold copy as plasma locate prints it.
func waitPlacement(t *testing.T, c *stream.Client, id stream.ObjectID, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		locs, err := c.LocateAll(bg, id)
		if err != nil {
			t.Fatal(err)
		}
		p := locs[id]
		var names []string
		for _, h := range p.Holders {
			names = append(names, h.Node)
		}
		got := "[" + strings.Join(names, " ") + "]"
		for _, cc := range p.Cold {
			got += " cold: " + cc.Tier + " (written by " + cc.Node + ")"
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("LOCATE %s: %s, want %s", id, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// getJSON decodes the JSON answer of a GET of url into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
