package stream_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/internal/wire"
	"github.com/plasmastream/plasmastream/stream"
)

// rawClient is a connection that has said HELLO and then writes frames by
// hand, as an unfinished or hostile client would.
func rawClient(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := streamwire.Hello{Version: streamwire.Version, Role: streamwire.RoleClient, Name: "raw"}
	copy(h.Magic[:], streamwire.Magic)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(streamwire.AppendFrame(nil, streamwire.TypeHello, h.Append(nil))); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := wire.ReadFrame(c, nil, 4096); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Time{})
	return c
}

// peerSize is the size of one peer request of 65,536 ids in a SYNC.
const peerSize = 1 + 4 + len(deadPeer) + 4 + streamwire.MaxObjectsPerPeerRequest*streamwire.IDSize

const deadPeer = "127.0.0.1:9"

// syncHeader is the beginning of a SYNC frame of peers peer requests of
// 65,536 ids each: the frame header and the peer count.
func syncHeader(peers int) []byte {
	var hb [wire.HeaderSize]byte
	wire.PutHeader(hb[:], wire.Header{Length: uint32(4 + peers*peerSize), Type: uint16(streamwire.TypeSync)})
	return binary.LittleEndian.AppendUint32(hb[:], uint32(peers))
}

// sendPeer writes peer request i of such a SYNC (ids distinct across
// clients by seed).
func sendPeer(t *testing.T, c net.Conn, i int, seed byte) {
	t.Helper()
	p := make([]byte, 0, peerSize)
	p = append(p, byte(streamwire.KindCopy))
	p = binary.LittleEndian.AppendUint32(p, uint32(len(deadPeer)))
	p = append(p, deadPeer...)
	p = binary.LittleEndian.AppendUint32(p, streamwire.MaxObjectsPerPeerRequest)
	for j := range streamwire.MaxObjectsPerPeerRequest {
		var id streamwire.ID
		binary.LittleEndian.PutUint32(id[:], uint32(j))
		id[18], id[19] = byte(i), seed
		p = append(p, id[:]...)
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(p); err != nil {
		t.Fatal(err)
	}
}

// readSyncDone reads the SyncDone that ends a SYNC reply.
func readSyncDone(t *testing.T, c net.Conn) streamwire.SyncDone {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		h, p, _, err := wire.ReadFrame(c, nil, streamwire.MaxControlFrame)
		if err != nil {
			t.Fatalf("no SyncDone: %v", err)
		}
		if streamwire.Type(h.Type) == streamwire.TypeSyncResult {
			var d streamwire.SyncDone
			if err := d.Decode(p); err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
}

func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// Clients that announce large SYNC frames and send only part of them hold
// request memory as their bytes arrive, within --request-memory: the
// server's memory stays within its budget, a request that does not fit is
// refused at once with a clear error naming the option, and other clients
// are served meanwhile.
func TestRequestMemoryBudget(t *testing.T) {
	sock, _ := testutil.StartStoreProcess(t, "16MiB")
	addr, _, _, pid := startStreamLogged(t, "a", sock, "", "--request-memory", "64MiB")
	ping := streamClient(t, addr)
	if _, err := ping.Ping(bg); err != nil {
		t.Fatal(err)
	}
	base := rssKiB(t, pid)

	// Three SYNCs of 6 peer requests, 7.5 MiB (19 MiB of budget each),
	// fit; each sends 5 of its peer requests.
	for i := range 3 {
		c := rawClient(t, addr)
		if _, err := c.Write(syncHeader(6)); err != nil {
			t.Fatal(err)
		}
		for p := range 5 {
			sendPeer(t, c, p, byte(i))
		}
	}
	// A fourth does not fit beside them.
	c := rawClient(t, addr)
	c.Write(syncHeader(6))
	d := readSyncDone(t, c)
	if d.Status != streamwire.StatusRequestTooLarge || !strings.Contains(d.Message, "--request-memory") || !strings.Contains(d.Message, "held by other requests") {
		t.Errorf("fourth SYNC: %s %q", d.Status, d.Message)
	}
	// Frames beyond the whole budget are refused before their payload:
	// what their clients send anyway costs the server nothing.
	for range 2 {
		c := rawClient(t, addr)
		c.Write(syncHeader(1000)) // 1.22 GiB
		d := readSyncDone(t, c)
		if d.Status != streamwire.StatusRequestTooLarge || !strings.Contains(d.Message, "more than the 64.0 MiB the server allows (--request-memory)") {
			t.Errorf("1400 MiB SYNC: %s %q", d.Status, d.Message)
		}
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		for range 64 {
			if _, err := c.Write(make([]byte, 1<<20)); err != nil {
				break
			}
		}
	}
	// Other clients are served meanwhile.
	if _, err := ping.Ping(bg); err != nil {
		t.Fatalf("PING while the budget is spent: %v", err)
	}
	if st, err := ping.Stat(bg); err != nil || st.Node != "a" {
		t.Fatalf("STAT while the budget is spent: %v", err)
	}
	// 3 × 6.25 MiB held; the race detector's shadow memory comes on top, so
	// the margin is as large as the budget.
	rss := rssKiB(t, pid)
	t.Logf("server RSS %d MiB, %d MiB more than before the requests", rss>>10, (rss-base)>>10)
	if rss-base > (64+64)<<10 {
		t.Errorf("server RSS grew by %d MiB (from %d MiB), beyond its 64 MiB budget and a 64 MiB margin", (rss-base)>>10, base>>10)
	}
}

// A large legal SYNC within the budget is read, validated and run; one
// twice as large is refused, naming the limit and the option.
func TestLargeSyncWithinBudget(t *testing.T) {
	b := testutil.StartNode(t, "b", "16MiB")
	sock, _ := testutil.StartStoreProcess(t, "16MiB")
	addr, _, _, _ := startStreamLogged(t, "a", sock, "", "--request-memory", "4MiB")
	ids := make([]stream.ObjectID, stream.MaxObjectsPerPeerRequest)
	for i := range ids {
		binary.LittleEndian.PutUint32(ids[i][:], uint32(i))
		ids[i][19] = 7
	}
	putID(t, b.Socket, ids[0], []byte("first"), nil)
	putID(t, b.Socket, ids[len(ids)-1], []byte("last"), nil)
	c := streamClient(t, addr)
	// 65,536 ids: a 1.25 MiB frame, 3.1 MiB of the 4 MiB budget.
	res, err := c.Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: b.Addr, Objects: ids}})
	if res == nil || len(res.Peers) != 1 || len(res.Peers[0].Objects) != len(ids) || res.Objects != 2 {
		t.Fatalf("SYNC of 65,536 ids: %+v, %v", res, err)
	}
	mustHave(t, sock, ids[0], []byte("first"), nil)
	mustHave(t, sock, ids[len(ids)-1], []byte("last"), nil)

	more := make([]stream.ObjectID, len(ids))
	for i := range more {
		more[i] = ids[i]
		more[i][19] = 8
	}
	_, err = c.Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: b.Addr, Objects: ids}, {Kind: stream.Copy, From: b.Addr, Objects: more}})
	if !stream.IsStatus(err, stream.StatusRequestTooLarge) || !strings.Contains(err.Error(), "--request-memory") {
		t.Fatalf("SYNC of 131,072 ids with a 4 MiB budget: %v", err)
	}
	if _, err := streamClient(t, addr).Ping(bg); err != nil {
		t.Fatal(err)
	}
}
