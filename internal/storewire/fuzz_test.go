package storewire

import (
	"bytes"
	"reflect"
	"testing"
)

type message interface {
	Append([]byte) []byte
}

// samples holds one valid message of each kind, for round trips and as
// fuzz seeds.
func samples() map[Type]message {
	id := ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	return map[Type]message{
		TypeHello:               Hello{Magic: [4]byte{'P', 'L', 'S', 'M'}, Version: Version},
		TypeHello | ReplyBit:    HelloReply{Version: 1, ArenaSize: 1 << 30, Capacity: 1<<30 - 5},
		TypeCreate:              Create{ID: id, DataSize: 1 << 40, Metadata: []byte("meta")},
		TypeCreate | ReplyBit:   Location{Offset: 64, DataSize: 10, MetaSize: 4},
		TypeCreateAndSeal:       CreateAndSeal{ID: id, Data: []byte("data"), Metadata: []byte("m"), HasDigest: true, Keep: true, Digest: [32]byte{7}},
		TypeSeal:                Seal{ID: id, HasDigest: true, Digest: [32]byte{9}},
		TypeAbort:               ObjectRef{ID: id},
		TypeRelease:             IDList{IDs: []ID{id}},
		TypeGet:                 Get{IDList: IDList{TimeoutMs: -1, IDs: []ID{id, {}}}},
		TypeGet | ReplyBit:      GetReply{Objects: []GetResult{{Found: true, Location: Location{Offset: 128, DataSize: 3, MetaSize: 1}, HasDigest: true, Digest: [32]byte{1}}, {}}},
		TypeDelete | ReplyBit:   Codes{Codes: []Code{CodeOK, CodeDeleteDeferred}},
		TypeEvict:               Number{N: 12345},
		TypeList | ReplyBit:     ListReply{More: true, Infos: []Info{{ID: id, DataSize: 5, State: StateSealed, ConstructNs: -1, HasDigest: true}}},
		TypeEvent:               Event{Kind: EventEvicted, ID: id, DataSize: 7, MetaSize: 2, TimeNs: 99, HasDigest: true, Digest: [32]byte{3}},
		TypeSubscribe:           Subscribe{Flags: SubscribeDigests},
		TypeColdTier | ReplyBit: ColdTierReply{URL: "s3://bucket/prefix"},
		TypeAdopt:               IDList{IDs: []ID{id}},
		TypeStats | ReplyBit:    StatsReply{Capacity: 1, Used: 2, Objects: 3, Clients: 12},
		TypeError:               ErrorReply{Code: CodeOutOfMemory, Message: "store full"},
		TypeOutboard | ReplyBit: Outboard{Digest: [32]byte{5}, Outboard: []byte("\x01\x00\x00\x00\x00\x00\x00\x00")},
		TypeSetOutboard:         SetOutboard{ID: id, Outboard: []byte("12345678")},
		TypeCreateAndSealBatch: CreateAndSealBatch{Objects: []CreateAndSeal{
			{ID: id, Data: []byte("data"), Metadata: []byte("m"), HasDigest: true, Digest: [32]byte{7}},
			{ID: ID{2}, Keep: true}}},
		TypeCreateAndSealBatch | ReplyBit: CreateAndSealBatchReply{Results: []BatchResult{{}, {Code: CodeObjectExists, Message: "object exists"}}},
	}
}

// decoderFor returns a fresh decoder for the payload of type t.
func decoderFor(t Type) interface{ Decode([]byte) error } {
	switch t {
	case TypeHello:
		return &Hello{}
	case TypeHello | ReplyBit:
		return &HelloReply{}
	case TypeCreate:
		return &Create{}
	case TypeCreate | ReplyBit:
		return &Location{}
	case TypeCreateAndSeal:
		return &CreateAndSeal{}
	case TypeCreateAndSealBatch:
		return &CreateAndSealBatch{}
	case TypeCreateAndSealBatch | ReplyBit:
		return &CreateAndSealBatchReply{}
	case TypeSeal:
		return &Seal{}
	case TypeOutboard | ReplyBit:
		return &Outboard{}
	case TypeSetOutboard:
		return &SetOutboard{}
	case TypeAbort, TypeContains, TypeOutboard:
		return &ObjectRef{}
	case TypeGet:
		return &Get{}
	case TypeDelete, TypeRelease, TypeAdopt, TypePersist:
		return &IDList{}
	case TypeColdTier | ReplyBit:
		return &ColdTierReply{}
	case TypeGet | ReplyBit:
		return &GetReply{}
	case TypeDelete | ReplyBit, TypeContains | ReplyBit, TypeRelease | ReplyBit, TypeAdopt | ReplyBit, TypePersist | ReplyBit:
		return &Codes{}
	case TypeEvict, TypeEvict | ReplyBit:
		return &Number{}
	case TypeList | ReplyBit:
		return &ListReply{}
	case TypeEvent:
		return &Event{}
	case TypeSubscribe:
		return &Subscribe{}
	case TypeStats | ReplyBit:
		return &StatsReply{}
	case TypeError:
		return &ErrorReply{}
	}
	return nil
}

func TestRoundTrip(t *testing.T) {
	for typ, m := range samples() {
		p := m.Append(nil)
		d := decoderFor(typ)
		if err := d.Decode(p); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		got := reflect.ValueOf(d).Elem().Interface()
		if !reflect.DeepEqual(normalize(got), normalize(m)) {
			t.Errorf("%s: round trip\n got %#v\nwant %#v", typ, got, m)
		}
		// Every strict prefix and any trailing byte is rejected.
		for i := 0; i < len(p); i++ {
			if decoderFor(typ).Decode(p[:i]) == nil {
				t.Errorf("%s: %d-byte prefix of %d accepted", typ, i, len(p))
			}
		}
		if decoderFor(typ).Decode(append(bytes.Clone(p), 0)) == nil {
			t.Errorf("%s: trailing byte accepted", typ)
		}
	}
}

// normalize makes empty and nil byte slices compare equal.
func normalize(v any) any {
	b, _ := reflect.ValueOf(v).Interface().(message)
	if b == nil {
		return v
	}
	return string(b.Append(nil))
}

func TestCountsCannotAllocateBeyondInput(t *testing.T) {
	// A Get announcing 65,536 ids but carrying none is rejected before
	// anything is allocated for them.
	p := (&Enc{}).B
	e := Enc{B: p}
	e.I64(0)
	e.U32(MaxIDsPerRequest)
	var m IDList
	if err := m.Decode(e.B); err == nil {
		t.Fatal("accepted a count with no ids behind it")
	}
	e = Enc{}
	e.I64(0)
	e.U32(MaxIDsPerRequest + 1)
	if err := m.Decode(e.B); err == nil {
		t.Fatal("accepted more than MaxIDsPerRequest ids")
	}
}

// FuzzDecode feeds arbitrary bytes to the frame reader and to every
// payload decoder: none may panic, whatever decodes must re-encode to the
// same number of bytes (no field is skipped or invented), and the
// re-encoding must decode to itself (booleans are the only fields with
// more than one encoding: any non-zero byte reads as true).
func FuzzDecode(f *testing.F) {
	for typ, m := range samples() {
		f.Add(uint16(typ), m.Append(nil))
	}
	for _, p := range getFlagCases() {
		f.Add(uint16(TypeGet), p.payload)
	}
	f.Add(uint16(TypeEvent), Event{Kind: EventDigest, ID: ID{9}, DataSize: 1 << 20, TimeNs: 5, HasDigest: true, Digest: [32]byte{0xaf, 1}}.Append(nil))
	f.Add(uint16(TypeEvent), Event{Kind: EventPresent, ID: ID{7}, DataSize: 3, MetaSize: 2, TimeNs: 9,
		Info: &EventInfo{CreateTimeNs: 1, ConstructNs: 2, CreatorPID: 3, Metadata: []byte("md")}}.Append(nil))
	f.Add(uint16(TypeSubscribe), []byte{})
	f.Add(uint16(TypeEvent), Event{Kind: EventCold, ID: ID{4}, DataSize: 9, TimeNs: 3, HasDigest: true, Digest: [32]byte{2}}.Append(nil))
	f.Add(uint16(TypeColdTier|ReplyBit), ColdTierReply{}.Append(nil))
	f.Add(uint16(TypeCreateAndSealBatch), CreateAndSealBatch{}.Append(nil))
	f.Add(uint16(TypeCreateAndSealBatch), batchWithFlags(0x80))
	f.Add(uint16(TypeSubscribe), Subscribe{Flags: SubscribeInfo | SubscribeSnapshot | SubscribeDigests}.Append(nil))
	page := ListReply{Infos: make([]Info, 2)}.Append(nil)
	f.Add(uint16(TypeList|ReplyBit), page)
	f.Add(uint16(TypeList|ReplyBit), page[:len(page)-1])
	f.Fuzz(func(t *testing.T, typ uint16, p []byte) {
		_, _, _, _ = ReadFrame(bytes.NewReader(p), nil, MaxRequestPayload)
		if Type(typ) == TypeList|ReplyBit { // a forwarder's check agrees with the decoder
			var page ListReply
			derr := page.Decode(p)
			if more, err := ListPageMore(p); (err == nil) != (derr == nil) || (err == nil && more != page.More) {
				t.Fatalf("ListPageMore says more=%v, %v; Decode says more=%v, %v", more, err, page.More, derr)
			}
		}
		d := decoderFor(Type(typ))
		if d == nil || d.Decode(p) != nil {
			return
		}
		re := reflect.ValueOf(d).Elem().Interface().(message).Append(nil)
		if len(re) != len(p) {
			t.Fatalf("%s: %d bytes decoded but %d re-encoded", Type(typ), len(p), len(re))
		}
		d2 := decoderFor(Type(typ))
		if err := d2.Decode(re); err != nil {
			t.Fatalf("%s: re-encoding does not decode: %v", Type(typ), err)
		}
		if re2 := reflect.ValueOf(d2).Elem().Interface().(message).Append(nil); !bytes.Equal(re, re2) {
			t.Fatalf("%s: encoding not stable:\n%x\n%x", Type(typ), re, re2)
		}
	})
}

type getFlagCase struct {
	name    string
	payload []byte
	ok      bool
	flags   uint32
}

// getFlagCases are Gets with and without the optional flags.
func getFlagCases() []getFlagCase {
	id := ID{1, 2, 3}
	head := IDList{TimeoutMs: 5, IDs: []ID{id}}.Append(nil)
	withFlags := func(b ...byte) []byte { return append(bytes.Clone(head), b...) }
	return []getFlagCase{
		{"no flags", head, true, 0},
		{"internal", withFlags(1, 0, 0, 0), true, GetInternal},
		{"zero flags spelled out", withFlags(0, 0, 0, 0), false, 0},
		{"unknown flag", withFlags(2, 0, 0, 0), false, 0},
		{"short flags", withFlags(1, 0), false, 0},
		{"flags then garbage", withFlags(1, 0, 0, 0, 9), false, 0},
		{"no ids, internal", append(IDList{TimeoutMs: -1}.Append(nil), 1, 0, 0, 0), true, GetInternal},
	}
}

func TestGetFlags(t *testing.T) {
	for _, tc := range getFlagCases() {
		var m Get
		err := m.Decode(tc.payload)
		if (err == nil) != tc.ok {
			t.Errorf("%s: decode error %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if err != nil {
			continue
		}
		if m.Flags != tc.flags {
			t.Errorf("%s: flags %#x, want %#x", tc.name, m.Flags, tc.flags)
		}
		if re := m.Append(nil); !bytes.Equal(re, tc.payload) {
			t.Errorf("%s: re-encoded as %x, want %x", tc.name, re, tc.payload)
		}
	}
	// Release and Delete take no flags.
	var l IDList
	if l.Decode(getFlagCases()[1].payload) == nil {
		t.Error("an IDList with trailing flags was accepted")
	}
}
