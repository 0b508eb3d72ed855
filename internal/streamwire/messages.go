package streamwire

import (
	"fmt"
	"net"
	"strconv"

	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/internal/wire"
)

func wireDec(p []byte) *Dec { return wire.NewDec(p) }

// Hello opens every connection.
type Hello struct {
	Magic   [4]byte
	Version uint16
	Role    Role
	Name    string // the connecting node or program, for logs
}

func (m Hello) Append(b []byte) []byte {
	e := Enc{B: b}
	e.Raw(m.Magic[:])
	e.U16(m.Version)
	e.U8(uint8(m.Role))
	e.Bytes32([]byte(truncate(m.Name, MaxNameLen)))
	return e.B
}

func (m *Hello) Decode(p []byte) error {
	d := wireDec(p)
	copy(m.Magic[:], d.Raw("magic", 4))
	m.Version = d.U16("version")
	m.Role = Role(d.U8("role"))
	m.Name = string(d.Bytes32("name", MaxNameLen))
	return d.Done()
}

// HelloReply accepts a connection (an ErrorReply refuses it).
type HelloReply struct {
	Version uint16
	Node    string // the server's node name
}

func (m HelloReply) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U16(m.Version)
	e.Bytes32([]byte(truncate(m.Node, MaxNameLen)))
	return e.B
}

func (m *HelloReply) Decode(p []byte) error {
	d := wireDec(p)
	m.Version = d.U16("version")
	m.Node = string(d.Bytes32("node", MaxNameLen))
	return d.Done()
}

// Ping carries a nonce echoed by the reply.
type Ping struct{ Nonce uint64 }

func (m Ping) Append(b []byte) []byte { e := Enc{B: b}; e.U64(m.Nonce); return e.B }

func (m *Ping) Decode(p []byte) error {
	d := wireDec(p)
	m.Nonce = d.U64("nonce")
	return d.Done()
}

// StoreState is whether the server's store is reachable, and since when
// (the last change: connecting, losing it, reconnecting).
type StoreState struct {
	Up      bool
	SinceNs int64 // Unix nanoseconds
}

func (m StoreState) append(e *Enc) {
	e.U8(b2u(m.Up))
	e.I64(m.SinceNs)
}

func (m *StoreState) decode(d *Dec) {
	m.Up = d.U8("store up") != 0
	m.SinceNs = d.I64("store since")
}

// PingReply answers a PING: the nonce and the state of the server's store.
type PingReply struct {
	Nonce uint64
	Store StoreState
}

func (m PingReply) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U64(m.Nonce)
	m.Store.append(&e)
	return e.B
}

func (m *PingReply) Decode(p []byte) error {
	d := wireDec(p)
	m.Nonce = d.U64("nonce")
	m.Store.decode(d)
	return d.Done()
}

// Kind is COPY or TAKE.
type Kind uint8

const (
	KindCopy Kind = 1
	KindTake Kind = 2
	// KindRelay is a COPY that the source may serve while it is itself
	// still receiving the object (cut-through), waiting a while for that
	// transfer to begin. Used to chain a broadcast.
	KindRelay Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindCopy:
		return "COPY"
	case KindTake:
		return "TAKE"
	case KindRelay:
		return "RELAY"
	}
	return fmt.Sprintf("KIND(%d)", uint8(k))
}

// PeerRequest asks the server to fetch objects from one peer.
type PeerRequest struct {
	Kind Kind
	Addr string // host:port, IPv6 hosts in brackets
	IDs  []ID
}

// Sync is a client's request: fetch from these peers.
type Sync struct{ Peers []PeerRequest }

func (m Sync) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U32(uint32(len(m.Peers)))
	for _, p := range m.Peers {
		e.U8(uint8(p.Kind))
		e.Bytes32([]byte(p.Addr))
		appendIDs(&e, p.IDs)
	}
	return e.B
}

func (m *Sync) Decode(p []byte) error {
	d := wireDec(p)
	// Each peer request takes at least 9 bytes, which bounds the count.
	n := d.Count("peer request count", 9, MaxFrame)
	m.Peers = make([]PeerRequest, n)
	for i := range m.Peers {
		pr := &m.Peers[i]
		pr.Kind = Kind(d.U8("kind"))
		pr.Addr = string(d.Bytes32("peer address", MaxAddrLen))
		pr.IDs = readIDs(d)
	}
	return d.Done()
}

func appendIDs(e *Enc, ids []ID) {
	e.U32(uint32(len(ids)))
	for _, id := range ids {
		e.ID(id)
	}
}

func readIDs(d *Dec) []ID {
	n := d.Count("object count", IDSize, MaxFrame/IDSize)
	ids := make([]ID, n)
	for i := range ids {
		ids[i] = d.ID("object id")
	}
	return ids
}

// Validate checks the limits of a SYNC before anything moves, returning
// the first violation with its own status and a sentence naming it.
func (m *Sync) Validate() (Status, string) {
	switch {
	case len(m.Peers) == 0:
		return StatusNoPeerRequests, "SYNC needs at least one peer request"
	case len(m.Peers) > MaxPeerRequests:
		return StatusTooManyPeerRequests, fmt.Sprintf("SYNC has %d peer requests; at most %d are allowed", len(m.Peers), MaxPeerRequests)
	}
	lists := make([][]ID, len(m.Peers))
	for i, p := range m.Peers {
		lists[i] = p.IDs
	}
	dup := duplicateAt(lists) // a position in request order, or -1
	for i, p := range m.Peers {
		if p.Kind != KindCopy && p.Kind != KindTake && p.Kind != KindRelay {
			return StatusMalformed, fmt.Sprintf("peer request %d: unknown kind %d", i+1, p.Kind)
		}
		if st, msg := ValidateAddr(p.Addr); st != StatusOK {
			return st, fmt.Sprintf("peer request %d: %s", i+1, msg)
		}
		st, msg := validateCount(p.IDs)
		if st == StatusOK && dup >= 0 && dup < len(p.IDs) {
			st, msg = StatusDuplicateID, fmt.Sprintf("object %x is requested more than once", p.IDs[dup][:])
		}
		if st != StatusOK {
			return st, fmt.Sprintf("peer request %d (%s %s): %s", i+1, p.Kind, p.Addr, msg)
		}
		dup -= len(p.IDs)
	}
	return StatusOK, ""
}

// ValidateAddr checks that a peer address is host:port.
func ValidateAddr(addr string) (Status, string) {
	host, port, err := net.SplitHostPort(addr)
	if _, perr := strconv.ParseUint(port, 10, 16); err != nil || host == "" || perr != nil {
		return StatusBadAddress, fmt.Sprintf("peer address %q is not host:port (IPv6 as [::1]:2021)", addr)
	}
	return StatusOK, ""
}

// ValidateIDs checks the object limits of one peer request; seen carries
// the ids of earlier peer requests of the same SYNC (nil for a lone COPY).
func ValidateIDs(ids []ID, seen map[ID]struct{}) (Status, string) {
	if st, msg := validateCount(ids); st != StatusOK {
		return st, msg
	}
	if seen == nil {
		seen = make(map[ID]struct{}, len(ids))
	}
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			return StatusDuplicateID, fmt.Sprintf("object %x is requested more than once", id[:])
		}
		seen[id] = struct{}{}
	}
	return StatusOK, ""
}

func validateCount(ids []ID) (Status, string) {
	switch {
	case len(ids) == 0:
		return StatusNoObjects, "at least one object must be requested"
	case len(ids) > MaxObjectsPerPeerRequest:
		return StatusTooManyObjects, fmt.Sprintf("%d objects requested; at most %d are allowed", len(ids), MaxObjectsPerPeerRequest)
	}
	return StatusOK, ""
}

// Copy is a COPY or TAKE from a peer: the ids it wants.
type Copy struct{ IDs []ID }

func (m Copy) Append(b []byte) []byte { e := Enc{B: b}; appendIDs(&e, m.IDs); return e.B }

func (m *Copy) Decode(p []byte) error {
	d := wireDec(p)
	m.IDs = readIDs(d)
	return d.Done()
}

// Locate is a LOCATE request: the ids, as a COPY's, then optionally flags
// u32, present only when non-zero (a LOCATE without flags is laid out as
// before they existed; a flags field of 0 or with an unknown bit is
// malformed, so every request has one encoding).
type Locate struct {
	IDs   []ID
	Flags uint32
}

// LocateCold asks for the cold copies beside the holders: the reply's
// values are Placements instead of arrays of Locations.
const LocateCold uint32 = 1

func (m Locate) Append(b []byte) []byte {
	e := Enc{B: b}
	appendIDs(&e, m.IDs)
	if m.Flags != 0 {
		e.U32(m.Flags)
	}
	return e.B
}

func (m *Locate) Decode(p []byte) error {
	d := wireDec(p)
	m.IDs = readIDs(d)
	m.Flags = 0
	if d.Left() > 0 {
		m.Flags = d.U32("flags")
		if m.Flags == 0 || m.Flags&^LocateCold != 0 {
			return fmt.Errorf("LOCATE flags %#x: known are %#x (cold copies); 0 is sent as no field", m.Flags, LocateCold)
		}
	}
	return d.Done()
}

// ObjectHeader announces one object of a COPY/TAKE reply. When Status is
// OK it is followed by MetaSize bytes of metadata, the 32-byte BLAKE3
// digest of the data, the 32-byte BLAKE3 digest of the metadata,
// OutboardSize bytes of the data's bao outboard (16 KiB groups; 0 when not
// sent: the receiver then verifies the whole object against the digest)
// and DataSize bytes of data, all raw.
type ObjectHeader struct {
	Index        uint32 // position in the COPY request
	ID           ID
	Status       Status
	DataSize     uint64
	MetaSize     uint32
	OutboardSize uint32
}

func (m ObjectHeader) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U32(m.Index)
	e.ID(m.ID)
	e.U16(uint16(m.Status))
	e.U64(m.DataSize)
	e.U32(m.MetaSize)
	e.U32(m.OutboardSize)
	return e.B
}

func (m *ObjectHeader) Decode(p []byte) error {
	d := wireDec(p)
	m.Index = d.U32("index")
	m.ID = d.ID("id")
	m.Status = Status(d.U16("status"))
	m.DataSize = d.U64("data size")
	m.MetaSize = d.U32("metadata size")
	m.OutboardSize = d.U32("outboard size")
	return d.Done()
}

// Ack tells the sender what became of one object at the receiver (TAKE
// deletes at the source only objects it sent and that were acknowledged
// with a success status: OK or AlreadyPresent, the latter only when the
// receiver's copy is sealed).
type Ack struct {
	Index  uint32
	Status Status
}

func (m Ack) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U32(m.Index)
	e.U16(uint16(m.Status))
	return e.B
}

func (m *Ack) Decode(p []byte) error {
	d := wireDec(p)
	m.Index = d.U32("index")
	m.Status = Status(d.U16("status"))
	return d.Done()
}

// Progress is sent to a SYNC client while its transfers run.
type Progress struct {
	BytesDone, BytesTotal     uint64
	ObjectsDone, ObjectsTotal uint32
}

func (m Progress) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U64(m.BytesDone)
	e.U64(m.BytesTotal)
	e.U32(m.ObjectsDone)
	e.U32(m.ObjectsTotal)
	return e.B
}

func (m *Progress) Decode(p []byte) error {
	d := wireDec(p)
	m.BytesDone = d.U64("bytes done")
	m.BytesTotal = d.U64("bytes total")
	m.ObjectsDone = d.U32("objects done")
	m.ObjectsTotal = d.U32("objects total")
	return d.Done()
}

// StatReply describes a server and its store.
type StatReply struct {
	Node        string
	Version     string
	UptimeNs    int64
	Connections uint32
	Store       storewire.StatsReply // zero while the store is down
	StoreState  StoreState
}

func (m StatReply) Append(b []byte) []byte {
	e := Enc{B: b}
	e.Bytes32([]byte(truncate(m.Node, MaxNameLen)))
	e.Bytes32([]byte(truncate(m.Version, MaxNameLen)))
	e.I64(m.UptimeNs)
	e.U32(m.Connections)
	e.B = m.Store.Append(e.B)
	m.StoreState.append(&e)
	return e.B
}

func (m *StatReply) Decode(p []byte) error {
	d := wireDec(p)
	m.Node = string(d.Bytes32("node", MaxNameLen))
	m.Version = string(d.Bytes32("version", MaxNameLen))
	m.UptimeNs = d.I64("uptime")
	m.Connections = d.U32("connections")
	rest := d.Raw("store stats", 12*8)
	m.StoreState.decode(d)
	if err := d.Done(); err != nil {
		return err
	}
	return m.Store.Decode(rest)
}

// Deleted lists, after a TAKE, the indexes of the objects the source
// deleted (those the receiver acknowledged as sealed and the source's store
// agreed to delete).
type Deleted struct{ Indexes []uint32 }

func (m Deleted) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U32(uint32(len(m.Indexes)))
	for _, i := range m.Indexes {
		e.U32(i)
	}
	return e.B
}

func (m *Deleted) Decode(p []byte) error {
	d := wireDec(p)
	n := d.Count("index count", 4, MaxObjectsPerPeerRequest)
	m.Indexes = make([]uint32, n)
	for i := range m.Indexes {
		m.Indexes[i] = d.U32("index")
	}
	return d.Done()
}

// JSON carries a control-plane reply as a JSON document (NODES, LOCATE,
// PREFETCH, DELETE-CLUSTER, DELETE):
// these change shape more often than the data path and are small.
type JSON struct{ Body []byte }

func (m JSON) Append(b []byte) []byte { e := Enc{B: b}; e.Bytes32(m.Body); return e.B }

func (m *JSON) Decode(p []byte) error {
	d := wireDec(p)
	m.Body = d.Bytes32("json", MaxControlFrame)
	return d.Done()
}

// Prefetch asks a server to spread an object it holds to every live member
// of a group.
type Prefetch struct {
	ID     ID
	Group  string
	Wait   bool  // reply with the outcome (else at once, with an empty list)
	Fanout uint8 // transfers one source serves at once (0: the server's default)
}

func (m Prefetch) Append(b []byte) []byte {
	e := Enc{B: b}
	e.ID(m.ID)
	e.Bytes32([]byte(m.Group))
	e.U8(b2u(m.Wait))
	e.U8(m.Fanout)
	return e.B
}

func (m *Prefetch) Decode(p []byte) error {
	d := wireDec(p)
	m.ID = d.ID("id")
	m.Group = string(d.Bytes32("group", MaxNameLen))
	m.Wait = d.U8("wait") != 0
	m.Fanout = d.U8("fanout")
	return d.Done()
}

// Group makes the server's node join (Join) or leave a group.
type Group struct {
	Name string
	Join bool
}

func (m Group) Append(b []byte) []byte {
	e := Enc{B: b}
	e.Bytes32([]byte(m.Name))
	e.U8(b2u(m.Join))
	return e.B
}

func (m *Group) Decode(p []byte) error {
	d := wireDec(p)
	m.Name = string(d.Bytes32("group", MaxNameLen))
	m.Join = d.U8("join") != 0
	return d.Done()
}

// MaxOutboardSize bounds the bao outboard a RANGE reply may carry: 8 bytes
// and 64 per 16 KiB group of a MaxDataSize object would be about 62 GB, so
// the limit is that of a control frame; objects beyond 16 GiB are fetched
// with COPY.
const MaxOutboardSize = MaxControlFrame - 1024

// Range asks for the bytes [Offset, Offset+Length) of an object's data,
// where Offset is a multiple of the 16 KiB group and Length one too unless
// the range ends at the end of the data. With Header set the reply carries
// the object's sizes, metadata, digest and bao outboard (Length may then
// be 0: only the header). With Wait set, a server that neither holds nor
// receives the object waits a while for a fetch of it to begin (a partial
// source of a PULL); without, it answers NotFound at once.
type Range struct {
	ID             ID
	Offset, Length uint64
	Header         bool
	Wait           bool
}

func (m Range) Append(b []byte) []byte {
	e := Enc{B: b}
	e.ID(m.ID)
	e.U64(m.Offset)
	e.U64(m.Length)
	e.U8(b2u(m.Header))
	e.U8(b2u(m.Wait))
	return e.B
}

func (m *Range) Decode(p []byte) error {
	d := wireDec(p)
	m.ID = d.ID("id")
	m.Offset = d.U64("offset")
	m.Length = d.U64("length")
	m.Header = d.U8("header") != 0
	m.Wait = d.U8("wait") != 0
	return d.Done()
}

// RangeReply answers a RANGE. When Status is OK, Length raw bytes of data
// follow it; the header fields are set only if the request asked for them.
type RangeReply struct {
	Status     Status
	Message    string
	Length     uint64 // data bytes that follow this frame
	Header     bool
	DataSize   uint64
	Digest     wire.Digest // BLAKE3 of the data
	Metadata   []byte
	MetaDigest wire.Digest // BLAKE3 of the metadata
	Outboard   []byte
}

func (m RangeReply) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U16(uint16(m.Status))
	e.Bytes32([]byte(m.Message))
	e.U64(m.Length)
	e.U8(b2u(m.Header))
	if m.Header {
		e.U64(m.DataSize)
		e.Digest(m.Digest)
		e.Bytes32(m.Metadata)
		e.Digest(m.MetaDigest)
		e.Bytes32(m.Outboard)
	}
	return e.B
}

func (m *RangeReply) Decode(p []byte) error {
	d := wireDec(p)
	m.Status = Status(d.U16("status"))
	m.Message = string(d.Bytes32("message", MaxMessageLen))
	m.Length = d.U64("length")
	m.Header = d.U8("header") != 0
	if m.Header {
		m.DataSize = d.U64("data size")
		m.Digest = d.Digest("digest")
		m.Metadata = d.Bytes32("metadata", MaxMetadataSize)
		m.MetaDigest = d.Digest("metadata digest")
		m.Outboard = d.Bytes32("outboard", MaxOutboardSize)
	}
	return d.Done()
}

// PullSource is a node a PULL may take ranges from. A Full source holds
// the whole object; the others are receiving it too and serve what they
// have verified so far.
type PullSource struct {
	Node, Addr string
	Full       bool
}

// Pull asks a server to fetch one object as ranges from several sources at
// once. The object's groups are cut into one slice per partial source plus
// one: the server takes slice Own from the full sources and slice k from
// the k-th partial source (from a full one if that source fails), so that
// a group of receivers forwards the parts each has to the others while
// still receiving.
type Pull struct {
	ID      ID
	Sources []PullSource
	Own     uint32 // this server's slice, counting partial sources in order
	Slices  uint32
}

// MaxPullSources bounds the sources of one PULL.
const MaxPullSources = 4096

func (m Pull) Append(b []byte) []byte {
	e := Enc{B: b}
	e.ID(m.ID)
	e.U32(uint32(len(m.Sources)))
	for _, s := range m.Sources {
		e.Bytes32([]byte(s.Node))
		e.Bytes32([]byte(s.Addr))
		e.U8(b2u(s.Full))
	}
	e.U32(m.Own)
	e.U32(m.Slices)
	return e.B
}

func (m *Pull) Decode(p []byte) error {
	d := wireDec(p)
	m.ID = d.ID("id")
	n := d.Count("sources", 9, MaxPullSources)
	m.Sources = make([]PullSource, n)
	for i := range m.Sources {
		m.Sources[i].Node = string(d.Bytes32("node", MaxNameLen))
		m.Sources[i].Addr = string(d.Bytes32("address", MaxAddrLen))
		m.Sources[i].Full = d.U8("full") != 0
	}
	m.Own = d.U32("own slice")
	m.Slices = d.U32("slices")
	if err := d.Done(); err != nil {
		return err
	}
	if m.Slices == 0 || m.Own >= m.Slices || m.Slices > MaxPullSources+1 {
		return fmt.Errorf("%w: slice %d of %d", wire.ErrMalformed, m.Own, m.Slices)
	}
	return nil
}
