package streamwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/internal/wire"
)

type message interface{ Append([]byte) []byte }

type decoder interface{ Decode([]byte) error }

func samples() []message {
	id := ID{1, 2, 3}
	return []message{
		Hello{Magic: [4]byte{'P', 'L', 'S', 'S'}, Version: Version, Role: RolePeer, Name: "node-a"},
		HelloReply{Version: Version, Node: "node-b"},
		Ping{Nonce: 42},
		Sync{Peers: []PeerRequest{{Kind: KindCopy, Addr: "[::1]:2022", IDs: []ID{id, {9}}}, {Kind: KindTake, Addr: "10.0.0.1:2021", IDs: []ID{{7}}}}},
		Copy{IDs: []ID{id}},
		ObjectHeader{Index: 3, ID: id, Status: StatusOK, DataSize: MaxDataSize, MetaSize: MaxMetadataSize, OutboardSize: 8},
		Ack{Index: 3, Status: StatusIntegrityFailure},
		Progress{BytesDone: 1, BytesTotal: 2, ObjectsDone: 3, ObjectsTotal: 4},
		StatReply{Node: "n", Version: "v", UptimeNs: 5, Connections: 6, Store: storewire.StatsReply{Capacity: 7}, StoreState: StoreState{Up: true, SinceNs: 8}},
		PeerResult{Kind: KindTake, Addr: "h:1", Status: StatusNotFound, Message: "m", Bytes: 9, DurationNs: 10,
			Objects: []ObjectResult{{ID: id, Status: StatusNotFound, Message: "gone"}, {Status: StatusOK, Bytes: 5, DeletedAtSource: true}}},
		SyncDone{Status: StatusTooManyObjects, Message: "x", Bytes: 1, Objects: 2, DurationNs: 3},
		ErrorReply{Status: StatusServerBusy, Message: "busy"},
		Deleted{Indexes: []uint32{0, 5}},
		JSON{Body: []byte(`[{"name":"a"}]`)},
		Prefetch{ID: id, Group: "gpu", Wait: true, Fanout: 2},
		Group{Name: "gpu", Join: true},
		Range{ID: id, Offset: 16 << 10, Length: 4 << 20, Header: true, Wait: true},
		RangeReply{Status: StatusOK, Length: 7, Header: true, DataSize: 9, Digest: [32]byte{4}, Metadata: []byte("m"), MetaDigest: [32]byte{5}, Outboard: []byte("12345678")},
		Pull{ID: id, Sources: []PullSource{{Node: "a", Addr: "h:1", Full: true}, {Node: "b", Addr: "h:2"}}, Own: 1, Slices: 2},
		PingReply{Nonce: 42, Store: StoreState{SinceNs: 1700000000000000000}},
		Locate{IDs: []ID{id}}, // with flags: a seed of FuzzDecode, TestLocateFlags
	}
}

func decoders() []decoder {
	return []decoder{&Hello{}, &HelloReply{}, &Ping{}, &Sync{}, &Copy{}, &ObjectHeader{}, &Ack{},
		&Progress{}, &StatReply{}, &PeerResult{}, &SyncDone{}, &ErrorReply{}, &Deleted{}, &JSON{}, &Prefetch{}, &Group{}, &Range{}, &RangeReply{}, &Pull{}, &PingReply{}, &Locate{}}
}

func TestRoundTrip(t *testing.T) {
	for i, m := range samples() {
		p := m.Append(nil)
		d := decoders()[i]
		if err := d.Decode(p); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if got := reflect.ValueOf(d).Elem().Interface(); !reflect.DeepEqual(got, m) {
			t.Errorf("%T round trip:\n got %#v\nwant %#v", m, got, m)
		}
		for n := range len(p) {
			if decoders()[i].Decode(p[:n]) == nil {
				t.Errorf("%T: %d-byte prefix accepted", m, n)
			}
		}
	}
}

// The counts and sizes can express every allowed value: 65,536 objects,
// 64 KiB of metadata, 16 TB of data, 1024 peer requests.
func TestLimitsAreExpressible(t *testing.T) {
	ids := make([]ID, MaxObjectsPerPeerRequest)
	for i := range ids {
		ids[i] = ID{byte(i), byte(i >> 8), 1}
	}
	var c Copy
	if err := c.Decode(Copy{IDs: ids}.Append(nil)); err != nil || len(c.IDs) != MaxObjectsPerPeerRequest {
		t.Fatalf("65,536 ids: %d %v", len(c.IDs), err)
	}
	if st, msg := ValidateIDs(c.IDs, nil); st != StatusOK {
		t.Fatalf("65,536 unique ids rejected: %s", msg)
	}
	peers := make([]PeerRequest, MaxPeerRequests)
	for i := range peers {
		peers[i] = PeerRequest{Kind: KindCopy, Addr: "h:1", IDs: []ID{{byte(i), byte(i >> 8), 2}}}
	}
	var s Sync
	if err := s.Decode(Sync{Peers: peers}.Append(nil)); err != nil {
		t.Fatal(err)
	}
	if st, msg := s.Validate(); st != StatusOK {
		t.Fatalf("1024 peer requests rejected: %s", msg)
	}
}

func TestValidate(t *testing.T) {
	one := []ID{{1}}
	many := make([]ID, MaxObjectsPerPeerRequest+1)
	for i := range many {
		many[i] = ID{byte(i), byte(i >> 8), byte(i >> 16)}
	}
	tooMany := make([]PeerRequest, MaxPeerRequests+1)
	for i := range tooMany {
		tooMany[i] = PeerRequest{Kind: KindCopy, Addr: "h:1", IDs: []ID{{byte(i), byte(i >> 8), 9}}}
	}
	cases := []struct {
		sync Sync
		want Status
		msg  string
	}{
		{Sync{}, StatusNoPeerRequests, "at least one"},
		{Sync{Peers: tooMany}, StatusTooManyPeerRequests, "1025 peer requests"},
		{Sync{Peers: []PeerRequest{{Kind: KindCopy, Addr: "h:1"}}}, StatusNoObjects, "at least one object"},
		{Sync{Peers: []PeerRequest{{Kind: KindCopy, Addr: "h:1", IDs: many}}}, StatusTooManyObjects, "65537 objects"},
		{Sync{Peers: []PeerRequest{{Kind: KindCopy, Addr: "h:1", IDs: []ID{{1}, {1}}}}}, StatusDuplicateID, "more than once"},
		{Sync{Peers: []PeerRequest{{Kind: KindCopy, Addr: "h:1", IDs: one}, {Kind: KindTake, Addr: "g:2", IDs: one}}}, StatusDuplicateID, "peer request 2"},
		{Sync{Peers: []PeerRequest{{Kind: KindCopy, Addr: "nohost", IDs: one}}}, StatusBadAddress, "host:port"},
		{Sync{Peers: []PeerRequest{{Kind: 7, Addr: "h:1", IDs: one}}}, StatusMalformed, "unknown kind"},
	}
	for _, tc := range cases {
		st, msg := tc.sync.Validate()
		if st != tc.want || !strings.Contains(msg, tc.msg) {
			t.Errorf("got %s %q, want %s mentioning %q", st, msg, tc.want, tc.msg)
		}
	}
}

// FuzzDecode: no decoder panics on any input, and whatever decodes
// re-encodes to the same length and decodes to itself.
func FuzzDecode(f *testing.F) {
	for i, m := range samples() {
		f.Add(uint8(i), m.Append(nil))
	}
	f.Add(uint8(len(samples())-1), Locate{IDs: []ID{{1}, {2}}, Flags: LocateCold}.Append(nil))
	f.Fuzz(func(t *testing.T, which uint8, p []byte) {
		wire.ReadFrame(bytes.NewReader(p), nil, MaxControlFrame)
		ds := decoders()
		d := ds[int(which)%len(ds)]
		if d.Decode(p) != nil {
			return
		}
		if s, ok := d.(*Sync); ok {
			s.Validate()
		}
		re := reflect.ValueOf(d).Elem().Interface().(message).Append(nil)
		if len(re) != len(p) {
			t.Fatalf("%T: %d bytes decoded, %d re-encoded", d, len(p), len(re))
		}
		d2 := decoders()[int(which)%len(ds)]
		if err := d2.Decode(re); err != nil {
			t.Fatalf("%T: re-encoding does not decode: %v", d, err)
		}
		if re2 := reflect.ValueOf(d2).Elem().Interface().(message).Append(nil); !bytes.Equal(re, re2) {
			t.Fatalf("%T: unstable encoding", d)
		}
	})
}

// FuzzRead: the streaming readers of SYNC and COPY accept exactly what the
// buffered decoders accept within the count limits, decode it to the same
// value, and never panic.
// LOCATE's flags are optional: without them the request is a COPY's
// list; a zero or unknown flags field is refused.
func TestLocateFlags(t *testing.T) {
	ids := []ID{{1}, {2}}
	var m Locate
	if err := m.Decode(Copy{IDs: ids}.Append(nil)); err != nil || m.Flags != 0 || len(m.IDs) != 2 {
		t.Fatalf("a COPY-shaped LOCATE: %+v, %v", m, err)
	}
	p := Locate{IDs: ids, Flags: LocateCold}.Append(nil)
	if err := m.Decode(p); err != nil || m.Flags != LocateCold {
		t.Fatalf("LOCATE with cold: %+v, %v", m, err)
	}
	for _, bad := range []uint32{0, 2} {
		e := Enc{B: Copy{IDs: ids}.Append(nil)}
		e.U32(bad)
		if err := m.Decode(e.B); err == nil {
			t.Errorf("flags %#x accepted", bad)
		}
	}
}

func FuzzRead(f *testing.F) {
	for _, m := range samples() {
		switch m.(type) {
		case Sync, Copy:
			f.Add(m.Append(nil))
		}
	}
	f.Add(Sync{Peers: []PeerRequest{{Kind: KindCopy, Addr: "h:1", IDs: make([]ID, 3)}}}.Append(nil)[:30])
	f.Fuzz(func(t *testing.T, p []byte) {
		var s Sync
		serr := s.Decode(p)
		got, err := ReadSync(bytes.NewReader(p), uint32(len(p)))
		checkRead(t, "SYNC", serr, err, &s, got)
		var c Copy
		cerr := c.Decode(p)
		gotc, err := ReadCopy(bytes.NewReader(p), uint32(len(p)))
		checkRead(t, "COPY", cerr, err, &c, gotc)
	})
}

func checkRead[T any](t *testing.T, what string, decErr, readErr error, want, got *T) {
	t.Helper()
	if _, limit := IsLimit(readErr); limit {
		return
	}
	if (decErr == nil) != (readErr == nil) {
		t.Fatalf("%s: Decode says %v, the reader %v", what, decErr, readErr)
	}
	if decErr == nil && !reflect.DeepEqual(want, got) {
		t.Fatalf("%s: the reader decoded %#v, Decode %#v", what, got, want)
	}
}

func TestReadLimits(t *testing.T) {
	big := make([]byte, 4, 4+9*2000)
	binary.LittleEndian.PutUint32(big, MaxPeerRequests+1)
	big = append(big, make([]byte, 9*(MaxPeerRequests+1))...)
	if _, err := ReadSync(bytes.NewReader(big), uint32(len(big))); err == nil {
		t.Fatal("1025 peer requests accepted")
	} else if le, ok := IsLimit(err); !ok || le.Status != StatusTooManyPeerRequests {
		t.Fatalf("got %v", err)
	}
	// A COPY announcing 65,537 ids is refused after its count, before
	// any id arrives (the reader has nothing more to give).
	hdr := binary.LittleEndian.AppendUint32(nil, MaxObjectsPerPeerRequest+1)
	if _, err := ReadCopy(bytes.NewReader(hdr), uint32(4+20*(MaxObjectsPerPeerRequest+1))); err == nil {
		t.Fatal("65,537 ids accepted")
	} else if le, ok := IsLimit(err); !ok || le.Status != StatusTooManyObjects {
		t.Fatalf("got %v", err)
	}
	// Cut short: the reader's error, not malformed.
	p := Copy{IDs: []ID{{1}, {2}}}.Append(nil)
	if _, err := ReadCopy(bytes.NewReader(p[:30]), uint32(len(p))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut short: %v", err)
	}
}
