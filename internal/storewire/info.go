package storewire

import "github.com/plasmastream/plasmastream/internal/wire"

// Object states as they travel.
const (
	StateCreated uint8 = 1
	StateSealed  uint8 = 2
	// StateCold: sealed, in the cold tier only (not in memory); a Get
	// restores it.
	StateCold uint8 = 3
	// StateSealedCold: sealed, in memory, with a copy in the cold tier.
	StateSealedCold uint8 = 4
)

// Info describes one object (List reply entries).
type Info struct {
	ID            ID
	DataSize      uint64
	MetaSize      uint32
	RefCount      uint32
	CreateTimeNs  int64 // unix nanoseconds
	ConstructNs   int64 // create to seal; -1 while unsealed
	CreatorPID    uint32
	State         uint8
	DeletePending bool
	HasDigest     bool
	Digest        wire.Digest
	LastUseUnixNs int64 // last release (LRU position)
	Offset        uint64
}

// InfoSize is the encoded size of one Info.
const InfoSize = IDSize + 8 + 4 + 4 + 8 + 8 + 4 + 1 + 1 + 1 + DigestSize + 8 + 8

func (m *Info) append(e *Enc) {
	e.ID(m.ID)
	e.U64(m.DataSize)
	e.U32(m.MetaSize)
	e.U32(m.RefCount)
	e.I64(m.CreateTimeNs)
	e.I64(m.ConstructNs)
	e.U32(m.CreatorPID)
	e.U8(m.State)
	e.U8(b2u(m.DeletePending))
	e.U8(b2u(m.HasDigest))
	e.Digest(m.Digest)
	e.I64(m.LastUseUnixNs)
	e.U64(m.Offset)
}

func (m *Info) read(d *Dec) {
	m.ID = d.ID("id")
	m.DataSize = d.U64("data size")
	m.MetaSize = d.U32("metadata size")
	m.RefCount = d.U32("ref count")
	m.CreateTimeNs = d.I64("create time")
	m.ConstructNs = d.I64("construct duration")
	m.CreatorPID = d.U32("creator pid")
	m.State = d.U8("state")
	m.DeletePending = d.U8("delete pending") != 0
	m.HasDigest = d.U8("has digest") != 0
	m.Digest = d.Digest("digest")
	m.LastUseUnixNs = d.I64("last use")
	m.Offset = d.U64("offset")
}

// ListReply is one page of a List. The server sends pages with the same
// request id until one has More=false.
type ListReply struct {
	More  bool
	Infos []Info
}

// MaxInfosPerPage keeps a List page well under MaxReplyPayload.
const MaxInfosPerPage = 65536

func (m ListReply) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U8(b2u(m.More))
	e.U32(uint32(len(m.Infos)))
	for i := range m.Infos {
		m.Infos[i].append(&e)
	}
	return e.B
}

// ListPageMore checks that p has the layout of a ListReply (a count of
// infos that the bytes hold exactly) without decoding the infos, and
// returns its More flag: what a forwarder of pages needs. It fails exactly
// where Decode does.
func ListPageMore(p []byte) (more bool, err error) {
	d := NewDec(p)
	more = d.U8("more") != 0
	n := d.Count("info count", InfoSize, MaxInfosPerPage)
	d.Raw("infos", n*InfoSize)
	return more, d.Done()
}

func (m *ListReply) Decode(p []byte) error {
	d := NewDec(p)
	m.More = d.U8("more") != 0
	n := d.Count("info count", InfoSize, MaxInfosPerPage)
	m.Infos = make([]Info, n)
	for i := range m.Infos {
		m.Infos[i].read(d)
	}
	return d.Done()
}

// Event kinds pushed to subscribers.
const (
	EventSealed  uint8 = 1
	EventDeleted uint8 = 2
	EventEvicted uint8 = 3
	// EventDigest: the store learned a sealed object's digest after its
	// seal event (its background hasher, or an Outboard request, hashed
	// it). Sent only to subscribers that asked with SubscribeDigests.
	EventDigest uint8 = 4
	// EventPresent: an object sealed before the subscription; with
	// SubscribeSnapshot the store sends one for every sealed object,
	// then EventSnapshotEnd, before any other event.
	EventPresent     uint8 = 5
	EventSnapshotEnd uint8 = 6
	// EventCold: the store wrote the object to its cold tier (a spill or
	// a persist), and EventColdDeleted: it deleted the tier's copy. Sent
	// only to subscribers that asked with SubscribeCold.
	EventCold        uint8 = 7
	EventColdDeleted uint8 = 8
)

// Subscribe flags.
const (
	// SubscribeDigests asks for EventDigest events as well.
	SubscribeDigests uint32 = 1
	// SubscribeQuiet asks for no events at all: the subscription only
	// tells, by ending, that the store went away (a stream server outside
	// a cluster watches its store so, without receiving every seal and
	// delete). It excludes SubscribeDigests.
	SubscribeQuiet uint32 = 2
	// SubscribeInfo asks for events that carry the object's info
	// (EventInfo: creation, construct time, creator, metadata) — what
	// state streaming records. A store older than it refuses the flag.
	SubscribeInfo uint32 = 4
	// SubscribeSnapshot asks for EventPresent for every object sealed
	// when the subscription starts, then EventSnapshotEnd: the state the
	// events that follow change, taken atomically with subscribing.
	SubscribeSnapshot uint32 = 8
	// SubscribeCold asks for EventCold and EventColdDeleted as well. A
	// store older than it refuses the flag.
	SubscribeCold uint32 = 16
)

// Subscribe is the optional payload of a Subscribe request (an empty
// payload, all a store before digest events knew, means no flags).
type Subscribe struct {
	Flags uint32
}

func (m Subscribe) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U32(m.Flags)
	return e.B
}

func (m *Subscribe) Decode(p []byte) error {
	d := NewDec(p)
	m.Flags = d.U32("flags")
	return d.Done()
}

// Event is pushed (request id 0) to a connection that sent Subscribe.
type Event struct {
	Kind      uint8
	ID        ID
	DataSize  uint64
	MetaSize  uint32
	TimeNs    int64
	HasDigest bool // the object's BLAKE3 digest, when the store knows it
	Digest    wire.Digest
	// Info follows, in events to a SubscribeInfo subscriber only (older
	// subscribers get the layout above, unchanged).
	Info *EventInfo
}

// EventInfo is what an event to a SubscribeInfo subscriber adds.
type EventInfo struct {
	CreateTimeNs int64
	ConstructNs  int64
	CreatorPID   uint32
	Metadata     []byte // the object's metadata (at most MaxMetadata)
}

func (m Event) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U8(m.Kind)
	e.ID(m.ID)
	e.U64(m.DataSize)
	e.U32(m.MetaSize)
	e.I64(m.TimeNs)
	e.U8(b2u(m.HasDigest))
	e.Digest(m.Digest)
	if in := m.Info; in != nil {
		e.I64(in.CreateTimeNs)
		e.I64(in.ConstructNs)
		e.U32(in.CreatorPID)
		e.Bytes32(in.Metadata)
	}
	return e.B
}

func (m *Event) Decode(p []byte) error {
	d := NewDec(p)
	m.Kind = d.U8("kind")
	m.ID = d.ID("id")
	m.DataSize = d.U64("data size")
	m.MetaSize = d.U32("metadata size")
	m.TimeNs = d.I64("time")
	m.HasDigest = d.U8("has digest") != 0
	m.Digest = d.Digest("digest")
	m.Info = nil
	if d.Left() > 0 {
		in := &EventInfo{}
		in.CreateTimeNs = d.I64("create time")
		in.ConstructNs = d.I64("construct duration")
		in.CreatorPID = d.U32("creator pid")
		in.Metadata = d.Bytes32("metadata", MaxMetadata)
		m.Info = in
	}
	return d.Done()
}

// StatsReply is the store's accounting.
type StatsReply struct {
	Capacity     uint64 // bytes usable for objects
	Used         uint64 // bytes allocated to objects (64-byte rounded)
	Objects      uint64 // sealed and unsealed
	Sealed       uint64
	Pinned       uint64 // bytes of objects referenced by a client or unsealed
	LargestFree  uint64 // largest contiguous free block
	FreeBlocks   uint64
	Evictions    uint64 // objects evicted since start
	EvictedBytes uint64
	Compactions  uint64 // compaction passes since start
	MovedBytes   uint64 // bytes moved by compaction
	Clients      uint64 // connected clients
}

func (m StatsReply) Append(b []byte) []byte {
	e := Enc{B: b}
	for _, f := range m.fieldsPtr() {
		e.U64(*f)
	}
	return e.B
}

func (m *StatsReply) Decode(p []byte) error {
	d := NewDec(p)
	for _, f := range m.fieldsPtr() {
		*f = d.U64("stat")
	}
	return d.Done()
}

func (m *StatsReply) fieldsPtr() []*uint64 {
	return []*uint64{&m.Capacity, &m.Used, &m.Objects, &m.Sealed, &m.Pinned,
		&m.LargestFree, &m.FreeBlocks, &m.Evictions, &m.EvictedBytes,
		&m.Compactions, &m.MovedBytes, &m.Clients}
}
