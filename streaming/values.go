package streaming

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// The values of the stores' pairs and the meta record
// (docs/state-streaming.proto has them as protobuf messages; these are
// their hand-written codecs).

// BlockMeta is the meta record of a block: the contents of its meta file
// (the block's commit marker) and of its NATS commit message.
type BlockMeta struct {
	Block uint64
	Node  string
	Time  time.Time // when the block closed
	// Start: the first block after this node's stream server started
	// (the state it carries begins there).
	Start bool
	// Snapshot: the block's `objects` pairs are every object the store
	// holds; a consumer forgets the objects it knew before.
	Snapshot bool
	// Prev is the block this streamer committed before this one (0: none
	// it knows of). Prev < Block-1 means blocks Prev+1 .. Block-1 were
	// lost by this streamer (a failed write, a full queue).
	Prev uint64
	// Pairs is the number of records of the block's data for this
	// streamer; DataBytes the length of the data file's contents.
	Pairs     uint64
	DataBytes uint64
}

// Lost is the number of blocks this streamer lost just before this one.
func (m *BlockMeta) Lost() uint64 {
	if m.Prev == 0 || m.Block <= m.Prev {
		return 0
	}
	return m.Block - m.Prev - 1
}

func (m *BlockMeta) Append(b []byte) []byte {
	b = appendUint(b, 1, m.Block)
	b = appendString(b, 2, m.Node)
	b = appendInt(b, 3, timeNs(m.Time))
	b = appendBool(b, 4, m.Start)
	b = appendBool(b, 5, m.Snapshot)
	b = appendUint(b, 6, m.Prev)
	b = appendUint(b, 7, m.Pairs)
	b = appendUint(b, 8, m.DataBytes)
	return b
}

func (m *BlockMeta) Decode(b []byte) error {
	*m = BlockMeta{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		switch num {
		case 1:
			m.Block = v
		case 2:
			m.Node = string(bs)
		case 3:
			m.Time = time.Unix(0, int64(v))
		case 4:
			m.Start = v != 0
		case 5:
			m.Snapshot = v != 0
		case 6:
			m.Prev = v
		case 7:
			m.Pairs = v
		case 8:
			m.DataBytes = v
		}
		return nil
	})
}

// DecodeMeta decodes a meta file's contents (length header included).
func DecodeMeta(b []byte) (BlockMeta, error) {
	var m BlockMeta
	body, err := unframe(b)
	if err != nil {
		return m, err
	}
	if err := m.Decode(body); err != nil {
		return m, fmt.Errorf("%w: meta: %v", ErrCorrupt, err)
	}
	if m.Block == 0 {
		return m, fmt.Errorf("%w: meta without a block number", ErrCorrupt)
	}
	return m, nil
}

// ObjectInfo is the value of a set in the `objects` store (key: the
// 20-byte object id).
type ObjectInfo struct {
	DataSize     uint64
	MetadataSize uint32
	Metadata     []byte
	Digest       []byte // BLAKE3, 32 bytes; nil while the store has not hashed it
	Created      time.Time
	Construct    time.Duration // create to seal
	CreatorPID   uint32
}

func (o *ObjectInfo) Append(b []byte) []byte {
	b = appendUint(b, 1, o.DataSize)
	b = appendUint(b, 2, uint64(o.MetadataSize))
	b = appendBytes(b, 3, o.Metadata)
	b = appendBytes(b, 4, o.Digest)
	b = appendInt(b, 5, timeNs(o.Created))
	b = appendInt(b, 6, int64(o.Construct))
	b = appendUint(b, 7, uint64(o.CreatorPID))
	return b
}

func (o *ObjectInfo) Decode(b []byte) error {
	*o = ObjectInfo{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		switch num {
		case 1:
			o.DataSize = v
		case 2:
			o.MetadataSize = uint32(v)
		case 3:
			o.Metadata = bs
		case 4:
			o.Digest = bs
		case 5:
			o.Created = time.Unix(0, int64(v))
		case 6:
			o.Construct = time.Duration(int64(v))
		case 7:
			o.CreatorPID = uint32(v)
		}
		return nil
	})
}

// Reasons of an `objects` delete.
const (
	RemovedDeleted uint64 = 1 // a client deleted it (or a TAKE moved it away)
	RemovedEvicted uint64 = 2 // the store evicted it for room
)

// ObjectRemoval is the value of a delete in the `objects` store.
type ObjectRemoval struct {
	Reason uint64 // RemovedDeleted or RemovedEvicted
	Time   time.Time
}

func (r *ObjectRemoval) Append(b []byte) []byte {
	b = appendUint(b, 1, r.Reason)
	return appendInt(b, 2, timeNs(r.Time))
}

func (r *ObjectRemoval) Decode(b []byte) error {
	*r = ObjectRemoval{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		switch num {
		case 1:
			r.Reason = v
		case 2:
			r.Time = time.Unix(0, int64(v))
		}
		return nil
	})
}

// Transfer is the value of a set in the `transfers` store: one finished
// transfer into or out of the node (key: TransferKey).
type Transfer struct {
	Direction string // "in" or "out"
	Kind      string // COPY, TAKE, SYNC, ...
	Peer      string
	Bytes     uint64
	Duration  time.Duration
	End       time.Time
	Status    string // the transfer's status ("OK" or the failure)
	Objects   []TransferObject
	// ObjectsOmitted counts objects beyond MaxTransferObjects, not
	// listed (one record stays well under a NATS message).
	ObjectsOmitted uint64
}

// MaxTransferObjects is the most objects a Transfer lists.
const MaxTransferObjects = 1024

// AddObject lists an object, or counts it in ObjectsOmitted beyond
// MaxTransferObjects.
func (t *Transfer) AddObject(o TransferObject) {
	if len(t.Objects) >= MaxTransferObjects {
		t.ObjectsOmitted++
		return
	}
	t.Objects = append(t.Objects, o)
}

// TransferObject is one object of a Transfer.
type TransferObject struct {
	ID     []byte
	Bytes  uint64
	Status string
}

func (t *Transfer) Append(b []byte) []byte {
	b = appendString(b, 1, t.Direction)
	b = appendString(b, 2, t.Kind)
	b = appendString(b, 3, t.Peer)
	b = appendUint(b, 4, t.Bytes)
	b = appendInt(b, 5, int64(t.Duration))
	b = appendInt(b, 6, timeNs(t.End))
	b = appendString(b, 7, t.Status)
	for i := range t.Objects {
		o := &t.Objects[i]
		var ob []byte
		ob = appendBytes(ob, 1, o.ID)
		ob = appendUint(ob, 2, o.Bytes)
		ob = appendString(ob, 3, o.Status)
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, ob)
	}
	return appendUint(b, 9, t.ObjectsOmitted)
}

func (t *Transfer) Decode(b []byte) error {
	*t = Transfer{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		switch num {
		case 1:
			t.Direction = string(bs)
		case 2:
			t.Kind = string(bs)
		case 3:
			t.Peer = string(bs)
		case 4:
			t.Bytes = v
		case 5:
			t.Duration = time.Duration(int64(v))
		case 6:
			t.End = time.Unix(0, int64(v))
		case 7:
			t.Status = string(bs)
		case 8:
			var o TransferObject
			err := eachField(bs, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
				switch num {
				case 1:
					o.ID = bs
				case 2:
					o.Bytes = v
				case 3:
					o.Status = string(bs)
				}
				return nil
			})
			if err != nil {
				return err
			}
			t.Objects = append(t.Objects, o)
		case 9:
			t.ObjectsOmitted = v
		}
		return nil
	})
}

func timeNs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Field writers that omit zero values, as proto3 does.

func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendInt(b []byte, num protowire.Number, v int64) []byte { return appendUint(b, num, uint64(v)) }

func appendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return appendUint(b, num, 1)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// TransferKey is the key of a transfer that ended at end: the end's Unix
// nanoseconds, 8 bytes big-endian (keys sort by time), then 4 random bytes.
func TransferKey(end time.Time) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(end.UnixNano()))
	return binary.BigEndian.AppendUint32(k, rand.Uint32())
}
