package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/plasmastream/plasmastream/internal/bridge"
	"github.com/plasmastream/plasmastream/internal/natsconn"
	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/testnode"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// put stores data in n's store under its content address.
func put(t *testing.T, n *testnode.Node, data []byte) store.ObjectID {
	t.Helper()
	id, err := testutil.StoreClient(t, n.Socket).Put(context.Background(), data, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// announce asks node to announce id on subject, through NATS.
func announce(t *testing.T, nc *nats.Conn, node string, id store.ObjectID, subject string) bridge.Announcement {
	t.Helper()
	var a bridge.Announcement
	if e := request(t, nc, "plasma.announce."+node, []byte(id.String()+" "+subject+" test blob"), &a); e != "" {
		t.Fatalf("announce %s on %s from %s: %s", id, subject, node, e)
	}
	return a
}

// holds checks that n's store has data under id, verified against its
// BLAKE3 digest.
func holds(t *testing.T, n *testnode.Node, id store.ObjectID, data []byte) {
	t.Helper()
	st := testutil.StoreClient(t, n.Socket)
	obj, err := st.GetVerified(context.Background(), id, 0)
	if err != nil {
		t.Fatalf("%s: object %s: %v", n.Name, id, err)
	}
	defer st.Release(context.Background(), id)
	if !bytes.Equal(obj.Data, data) {
		t.Fatalf("%s: object %s differs from what was announced", n.Name, id)
	}
}

func lacks(t *testing.T, n *testnode.Node, id store.ObjectID) {
	t.Helper()
	if ok, err := testutil.StoreClient(t, n.Socket).Contains(context.Background(), id); err != nil || ok {
		t.Fatalf("%s holds %s (err %v); want it absent", n.Name, id, err)
	}
}

// collect gathers the messages of subject on nc.
type collect struct {
	mu   sync.Mutex
	msgs []bridge.Announcement
}

// collectOn reads subject from the announcements' JetStream stream, so
// that no message is missed while NATS restarts.
func collectOn(t *testing.T, nc *nats.Conn, subject string) *collect {
	c := &collect{}
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Subscribe(subject, func(m *nats.Msg) {
		var a bridge.Announcement
		if json.Unmarshal(m.Data, &a) == nil {
			c.mu.Lock()
			c.msgs = append(c.msgs, a)
			c.mu.Unlock()
		}
	}, nats.OrderedConsumer(), nats.DeliverAll(), nats.IdleHeartbeat(time.Second)); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *collect) from(node string) (bridge.Announcement, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.msgs {
		if a.Node == node {
			return a, true
		}
	}
	return bridge.Announcement{}, false
}

// linked waits until a message published on one NATS reaches a
// subscriber on the other.
func linked(t *testing.T, from, to *nats.Conn, subject string) {
	t.Helper()
	got := make(chan struct{}, 1)
	sub, err := to.Subscribe(subject, func(*nats.Msg) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	to.Flush()
	waitFor(t, "a message across the sites on "+subject, func() bool {
		from.Publish(subject, []byte("hello"))
		select {
		case <-got:
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
}

// Two sites, each with its own embedded NATS joined as leaf nodes, and no
// etcd: a blob announced at site 1 replicates to the two subscribing
// nodes of site 2. Its only holder dies part of the way in (as seen
// through a proxy that is killed); when
// another holder announces it, the subscribers resume from the groups
// they verified, from the new holder (and from each other).
func TestReplicateAcrossSitesResumes(t *testing.T) {
	leaf := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t, "127.0.0.1"))
	const size = 24 << 20
	// a1 serves a third of the blob in all, to both subscribers together,
	// so that neither can complete it from a1 or from the other.
	dying, proxy := behindProxy(t, func(p *testutil.Proxy) { p.StallTotalAt = size / 3 })
	a1 := start(t, "a1", embedded(t, natsconn.Sites{LeafListen: leaf}), dying)
	a2 := start(t, "a2", via(a1.Server.NATSURL()))
	b1 := start(t, "b1", embedded(t, natsconn.Sites{Leafs: []string{"nats-leaf://" + leaf}}), subscribe("sensors.>"))
	b2 := start(t, "b2", via(b1.Server.NATSURL()), subscribe("sensors.>"))
	site1, site2 := client(t, a1.Server.NATSURL()), client(t, b1.Server.NATSURL())
	linked(t, site2, site1, "probe.up")
	linked(t, site1, site2, "probe.down")
	replicated := collectOn(t, site1, "plasma.replicated.>")

	data := testutil.Pattern(size, 9)
	id := put(t, a1, data)
	put(t, a2, data)
	a := announce(t, site1, "a1", id, "sensors.temp")
	if a.Addr != proxy.Addr || a.ID() != id || a.Size != size || a.Name != "test blob" || a.Node != "a1" || a.Subject != "sensors.temp" {
		t.Fatalf("announcement %+v; want a1's blob, its size and name, and the address a1 is reached at", a)
	}
	hash := a.Hash.String()
	<-proxy.Stalled()
	proxy.Kill() // a1 dies mid-transfer
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("last report: %s\nb2: %+v\nproxy: %s", last, report(t, site2, "b2"), proxy)
		}
	}()
	for _, b := range []string{"b1", "b2"} {
		waitFor(t, b+" failing with its only source dead", func() bool {
			r := report(t, site2, b)
			s, ok := blobState(r, hash)
			last = fmt.Sprintf("%+v", r)
			return ok && s.State == bridge.StateFailed
		})
		if s, _ := blobState(report(t, site2, b), hash); !strings.Contains(s.Error, "a1") {
			t.Errorf("%s's failure %q does not name the source that died", b, s.Error)
		}
	}
	lacks(t, b1, id)
	lacks(t, b2, id)

	announce(t, site1, "a2", id, "sensors.temp")
	var resumed uint64
	for _, b := range []*testnode.Node{b1, b2} {
		waitFor(t, b.Name+" replicating the blob", func() bool {
			s, _ := blobState(report(t, site2, b.Name), hash)
			return s.State == bridge.StateReplicated
		})
		holds(t, b, id, data)
		s, _ := blobState(report(t, site2, b.Name), hash)
		if s.Attempts < 2 {
			t.Errorf("%s replicated in %d attempts; want the failed one and the next", b.Name, s.Attempts)
		}
		resumed += s.Resumed
		waitFor(t, b.Name+"'s replicated message at site 1", func() bool { _, ok := replicated.from(b.Name); return ok })
		m, _ := replicated.from(b.Name)
		if !m.Replicated || m.Subject != "sensors.temp" || m.Hash != a.Hash || m.Addr != b.Addr || m.Bytes != size {
			t.Errorf("%s's message on plasma.replicated.sensors.temp: %+v; want the blob, its size and %s's address", b.Name, m, b.Name)
		}
	}
	if resumed == 0 {
		t.Errorf("no subscriber resumed: both fetched the blob from byte 0 again after its holder died")
	}
	r := report(t, site2, "b2")
	s, _ := blobState(r, hash)
	if len(r.Subjects) != 1 || r.Subjects[0].Subject != "sensors.temp" || len(s.Holders) < 3 {
		t.Errorf("b2's report: %+v; want sensors.temp with holders a1, a2 and b2 at least", r)
	}
	// Announcing again costs nothing: no new attempt.
	before, _ := blobState(report(t, site2, "b1"), hash)
	announce(t, site1, "a2", id, "sensors.temp")
	if after, _ := blobState(report(t, site2, "b1"), hash); after.Attempts != before.Attempts || after.State != bridge.StateReplicated {
		t.Errorf("b1 after a repeated announcement: %+v; want it unchanged (%+v)", after, before)
	}
	t.Logf("resumed %d bytes in all; b2: %+v", resumed, s)
}

// A source that sends corrupt bytes is rejected group by group: nothing
// is stored from it; an honest holder then serves the blob.
func TestCorruptSourceRejected(t *testing.T) {
	flips, _ := behindProxy(t, func(p *testutil.Proxy) { p.FlipAt = 1<<20 + 77 })
	a1 := start(t, "a1", embedded(t, natsconn.Sites{}), flips)
	a2 := start(t, "a2", via(a1.Server.NATSURL()))
	metricsAddr := testutil.FreeAddr(t)
	b := start(t, "b", via(a1.Server.NATSURL()), subscribe("models.*"), func(c *streamserver.Config) { c.MetricsAddr = metricsAddr })
	nc := client(t, a1.Server.NATSURL())
	data := testutil.Pattern(6<<20, 4)
	id := put(t, a1, data)
	put(t, a2, data)
	hash := announce(t, nc, "a1", id, "models.m1").Hash.String()
	var failure string
	waitFor(t, "b rejecting the corrupt source", func() bool {
		s, _ := blobState(report(t, nc, "b"), hash)
		failure = s.Error
		return s.State == bridge.StateFailed
	})
	if !strings.Contains(failure, "a1") || !strings.Contains(failure, "does not match") {
		t.Errorf("b's failure %q; want it to name a1 and the group that did not verify", failure)
	}
	lacks(t, b, id)
	announce(t, nc, "a2", id, "models.m1")
	waitFor(t, "b replicating from the honest holder", func() bool {
		s, _ := blobState(report(t, nc, "b"), hash)
		return s.State == bridge.StateReplicated
	})
	holds(t, b, id, data)
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`plasma_bridge_replication_attempts_total{result="failed"}`, `plasma_bridge_replication_attempts_total{result="replicated"} 1`,
		`plasma_bridge_blobs{state="replicated"} 1`, `plasma_bridge_announcements_total{result="accepted"} 2`, `plasma_bridge_requests_total{op="replication",result="ok"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("b's metrics lack %s", want)
		}
	}
}

// Subscriptions take NATS wildcards; blobs on other subjects are
// ignored. (Announcements not kept: plain NATS subscriptions.)
func TestWildcardSubscriptions(t *testing.T) {
	a := start(t, "a", embedded(t, natsconn.Sites{}), unkept)
	httpAddr := testutil.FreeAddr(t)
	b := start(t, "b", via(a.Server.NATSURL()), subscribe("sensors.*", "logs.>"), unkept, func(c *streamserver.Config) { c.MetricsAddr = httpAddr })
	nc := client(t, a.Server.NATSURL())
	blobs := map[string]store.ObjectID{}
	data := map[string][]byte{}
	subjects := []string{"sensors.a.b", "models.m", "logsx.y", "sensors.a", "logs.x.y"} // the ignored first
	for i, s := range subjects {
		data[s] = testutil.Pattern(200<<10+i, byte(i))
		blobs[s] = put(t, a, data[s])
		announce(t, nc, "a", blobs[s], s)
	}
	for _, s := range subjects[3:] {
		waitFor(t, "b replicating "+s, func() bool {
			ok, _ := testutil.StoreClient(t, b.Socket).Contains(context.Background(), blobs[s])
			return ok
		})
		holds(t, b, blobs[s], data[s])
	}
	for _, s := range subjects[:3] {
		lacks(t, b, blobs[s])
	}
	r := report(t, nc, "b")
	if fmt.Sprint(r.Subscriptions) != "[sensors.* logs.>]" || len(r.Subjects) != 2 {
		t.Errorf("b's report: %+v; want its 2 subscriptions and the 2 subjects it replicated", r)
	}
	// b's dashboard has a section of what it replicates.
	resp, err := http.Get("http://" + httpAddr + "/api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"name":"bridge"`) || !strings.Contains(string(body), `"sensors.*"`) {
		t.Errorf("b's dashboard state has no bridge section with its subscriptions:\n%.2000s", body)
	}
}

// The external NATS (Debian's nats-server) restarts while a blob is in
// flight: the transfer, which does not go through NATS, completes; the
// replicated message reaches the other side once NATS is back; and
// announcements after the restart replicate.
func TestNATSRestartDuringReplication(t *testing.T) {
	ns := startNATSServer(t)
	stalls, proxy := behindProxy(t, func(p *testutil.Proxy) { p.StallAt = 2 << 20 })
	a := start(t, "a", via(ns.url()), stalls)
	b := start(t, "b", via(ns.url()), subscribe("x.>"))
	nc := client(t, ns.url())
	replicated := collectOn(t, nc, "plasma.replicated.>")
	first := testutil.Pattern(8<<20, 5)
	id := put(t, a, first)
	hash := announce(t, nc, "a", id, "x.first").Hash.String()
	<-proxy.Stalled()
	// The report shows the blob in flight, with the bytes verified so far
	// (not all: every connection to a stalls 2 MiB in).
	var inflight bridge.BlobReplication
	waitFor(t, "b's report of the bytes in flight", func() bool {
		inflight, _ = blobState(report(t, nc, "b"), hash)
		return inflight.State == bridge.StateFetching && inflight.Bytes > 0
	})
	if inflight.Bytes >= uint64(len(first)) || len(inflight.Holders) != 1 || inflight.Holders[0].Node != "a" {
		t.Errorf("b's report while the blob is in flight: %+v; want a as its holder and part of the blob verified", inflight)
	}
	ns.stop()
	proxy.Resume()
	waitFor(t, "b replicating while NATS is down", func() bool {
		ok, _ := testutil.StoreClient(t, b.Socket).Contains(context.Background(), id)
		return ok
	})
	holds(t, b, id, first)
	ns.start()
	waitFor(t, "b's replicated message after NATS restarted", func() bool { _, ok := replicated.from("b"); return ok })

	waitFor(t, "a answering requests after NATS restarted", func() bool {
		_, err := nc.Request("plasma.stat.a", nil, time.Second)
		return err == nil
	})
	second := testutil.Pattern(3<<20, 6)
	id2 := put(t, a, second)
	announce(t, nc, "a", id2, "x.second")
	waitFor(t, "b replicating a blob announced after the restart", func() bool {
		ok, _ := testutil.StoreClient(t, b.Socket).Contains(context.Background(), id2)
		return ok
	})
	holds(t, b, id2, second)
}

// Announcements are kept in JetStream: a node that subscribes after a
// blob was announced still replicates it.
func TestLateSubscriberCatchesUp(t *testing.T) {
	a := start(t, "a", embedded(t, natsconn.Sites{}))
	nc := client(t, a.Server.NATSURL())
	data := testutil.Pattern(1<<20, 3)
	id := put(t, a, data)
	announce(t, nc, "a", id, "late.x")
	b := start(t, "b", via(a.Server.NATSURL()), subscribe("late.>"))
	waitFor(t, "b replicating a blob announced before it started", func() bool {
		ok, _ := testutil.StoreClient(t, b.Socket).Contains(context.Background(), id)
		return ok
	})
	holds(t, b, id, data)

	// Deleted here, it is fetched again when another holder announces it.
	if _, err := testutil.StoreClient(t, b.Socket).Delete(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	c := start(t, "c", via(a.Server.NATSURL()))
	put(t, c, data)
	announce(t, nc, "c", id, "late.x")
	waitFor(t, "b replicating the blob it lost", func() bool {
		ok, _ := testutil.StoreClient(t, b.Socket).Contains(context.Background(), id)
		return ok
	})
	holds(t, b, id, data)
}

// publish.subjects bounds where a node announces: elsewhere the announce
// request, and the announcement asked with an import, are refused.
func TestPublishSubjects(t *testing.T) {
	a := start(t, "a", embedded(t, natsconn.Sites{}), func(c *streamserver.Config) { c.Bridge.Publish = []string{"sensors.>", "logs.*"} })
	nc := client(t, a.Server.NATSURL())
	id := put(t, a, testutil.Pattern(64<<10, 1))
	for _, s := range []string{"sensors.a.b", "logs.x"} {
		announce(t, nc, "a", id, s)
	}
	for _, s := range []string{"models.m", "logs.x.y", "sensors"} {
		if e := request(t, nc, "plasma.announce", []byte(id.String()+" "+s), nil); !strings.Contains(e, `a does not publish on "`+s+`"`) {
			t.Errorf("announce on %s: error %q; want it refused, naming publish.subjects", s, e)
		}
	}
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, testutil.Pattern(100<<10, 2), 0o644)
	e := request(t, nc, "plasma.import", []byte(`{"path": "`+path+`", "announce": "models.m"}`), nil)
	if !strings.Contains(e, "imported "+path+" as ") || !strings.Contains(e, `does not publish on "models.m"`) {
		t.Errorf("import announced on models.m: error %q; want the import done and the announcement refused", e)
	}
}
