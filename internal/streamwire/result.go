package streamwire

// ObjectResult is what became of one object.
type ObjectResult struct {
	ID              ID
	Status          Status
	Bytes           uint64 // data + metadata bytes received (0 unless transferred)
	DeletedAtSource bool   // TAKE: the source deleted its copy
	Message         string // empty, or a sentence naming the cause
}

// MaxObjectMessageLen bounds each object's message so that a PeerResult of
// 65,536 objects stays well under MaxControlFrame.
const MaxObjectMessageLen = 512

const objectResultMinSize = IDSize + 2 + 8 + 1 + 4

// PeerResult is what became of one peer request. A SYNC reply is one
// PeerResult frame per peer request, in request order, then a SyncDone.
// A direct COPY/TAKE by a client builds the same value locally.
type PeerResult struct {
	Kind       Kind
	Addr       string
	Status     Status // OK when every object succeeded
	Message    string
	Bytes      uint64
	DurationNs int64
	Objects    []ObjectResult
}

func (m PeerResult) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U8(uint8(m.Kind))
	e.Bytes32([]byte(m.Addr))
	e.U16(uint16(m.Status))
	e.Bytes32([]byte(truncate(m.Message, MaxMessageLen)))
	e.U64(m.Bytes)
	e.I64(m.DurationNs)
	e.U32(uint32(len(m.Objects)))
	for _, o := range m.Objects {
		e.ID(o.ID)
		e.U16(uint16(o.Status))
		e.U64(o.Bytes)
		e.U8(b2u(o.DeletedAtSource))
		e.Bytes32([]byte(truncate(o.Message, MaxObjectMessageLen)))
	}
	return e.B
}

func (m *PeerResult) Decode(p []byte) error {
	d := wireDec(p)
	m.Kind = Kind(d.U8("kind"))
	m.Addr = string(d.Bytes32("peer address", MaxAddrLen))
	m.Status = Status(d.U16("status"))
	m.Message = string(d.Bytes32("message", MaxMessageLen))
	m.Bytes = d.U64("bytes")
	m.DurationNs = d.I64("duration")
	n := d.Count("object count", objectResultMinSize, MaxObjectsPerPeerRequest)
	m.Objects = make([]ObjectResult, n)
	for i := range m.Objects {
		o := &m.Objects[i]
		o.ID = d.ID("id")
		o.Status = Status(d.U16("status"))
		o.Bytes = d.U64("bytes")
		o.DeletedAtSource = d.U8("deleted at source") != 0
		o.Message = string(d.Bytes32("message", MaxObjectMessageLen))
	}
	return d.Done()
}

// SyncDone ends a SYNC reply with the totals and the request-level status
// (OK only when every peer request succeeded; a limit violation when the
// SYNC was rejected before anything moved, with no PeerResult before it).
type SyncDone struct {
	Status     Status
	Message    string
	Bytes      uint64
	Objects    uint64
	DurationNs int64
}

func (m SyncDone) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U16(uint16(m.Status))
	e.Bytes32([]byte(truncate(m.Message, MaxMessageLen)))
	e.U64(m.Bytes)
	e.U64(m.Objects)
	e.I64(m.DurationNs)
	return e.B
}

func (m *SyncDone) Decode(p []byte) error {
	d := wireDec(p)
	m.Status = Status(d.U16("status"))
	m.Message = string(d.Bytes32("message", MaxMessageLen))
	m.Bytes = d.U64("bytes")
	m.Objects = d.U64("objects")
	m.DurationNs = d.I64("duration")
	return d.Done()
}
