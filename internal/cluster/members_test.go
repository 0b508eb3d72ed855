package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/cluster/clustertest"
)

// Members follows registrations: a node's key is found while it is
// registered, is gone once it leaves or its record changes key, and
// malformed keys are never members.
func TestMembersFollowRegistrations(t *testing.T) {
	e := clustertest.StartEmbedded(t)
	cli := dial(t, e.Endpoints())
	key := func(c byte) string { return strings.Repeat(string(c), 64) }
	openKeyed := func(name, k string) *Directory {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d, err := Open(ctx, Config{Client: cli, Self: Node{Name: name, Address: name + ":1", Key: k}, LeaseTTL: testTTL, Logger: clustertest.LogBuffer(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	a := openKeyed("a", key('a'))
	var changes atomic.Int32
	m := a.WatchMembers(func() { changes.Add(1) })
	has := func(k, name string) func() error {
		return func() error {
			n, ok := m.ByKey(k)
			if name == "" && ok {
				return fmt.Errorf("key %s… still a member (%s)", k[:8], n.Name)
			}
			if name != "" && (!ok || n.Name != name) {
				return fmt.Errorf("key %s…: %v %q, want %s", k[:8], ok, n.Name, name)
			}
			return nil
		}
	}
	waitFor(t, "a's own key", 10*time.Second, has(key('a'), "a"))
	b := openKeyed("b", key('B')) // upper case is read too
	waitFor(t, "b joins", 10*time.Second, has(key('b'), "b"))
	openKeyed("c", "not-a-key")
	openKeyed("d", "")
	time.Sleep(200 * time.Millisecond)
	if _, ok := m.ByKey("not-a-key"); ok {
		t.Fatal("a malformed key is a member")
	}
	b.Close()
	waitFor(t, "b leaves", 10*time.Second, has(key('b'), ""))
	if !m.Ready() || changes.Load() < 3 {
		t.Fatalf("ready %v, %d changes reported", m.Ready(), changes.Load())
	}
	// b comes back under another key: the old one is not a member.
	openKeyed("b", key('e'))
	waitFor(t, "b's new key", 10*time.Second, has(key('e'), "b"))
	waitFor(t, "b's old key", time.Second, has(key('b'), ""))
	a.Close()
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the watch outlived its directory")
	}
}
