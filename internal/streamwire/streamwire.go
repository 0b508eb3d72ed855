package streamwire

import (
	"fmt"

	"github.com/plasmastream/plasmastream/internal/wire"
)

// Protocol constants.
const (
	Magic   = "PLSS"
	Version = 1

	IDSize     = wire.IDSize
	DigestSize = wire.DigestSize

	// Limits of the Plasma Stream protocol.
	MaxObjectsPerPeerRequest = 65536
	MaxPeerRequests          = 1024
	MaxDataSize              = 16_000_000_000_000 // 16 TB, inclusive
	MaxMetadataSize          = 64 << 10           // 64 KiB, inclusive

	// MaxFrame bounds every frame. The largest legal one is a SYNC of 1024
	// peer requests of 65,536 ids each: about 1.34 GB.
	MaxFrame = 1536 << 20
	// MaxControlFrame bounds frames other than SYNC and COPY/TAKE.
	MaxControlFrame = 64 << 20
	MaxAddrLen      = 1024
	MaxNameLen      = 255
	MaxMessageLen   = 4096
)

// Type identifies a message.
type Type uint16

const (
	TypeHello        Type = 1
	TypePing         Type = 2
	TypeSync         Type = 3
	TypeCopy         Type = 4
	TypeTake         Type = 5
	TypeStat         Type = 6
	TypeList         Type = 7
	TypeFetch        Type = 13 // cluster: make objects local, from any holder
	TypeNodes        Type = 14 // cluster: the registered nodes (JSON reply)
	TypeLocate       Type = 15 // cluster: the holders of objects (JSON reply)
	TypePrefetch     Type = 16 // cluster: spread an object to a group (JSON reply)
	TypeDeleteAll    Type = 17 // cluster: delete objects on every holder (JSON reply)
	TypeDeleteLocal  Type = 18 // delete objects from this server's store (JSON reply)
	TypeRelay        Type = 19 // COPY, served cut-through while the source still receives
	TypeGroup        Type = 26 // cluster: this node joins or leaves a group (JSON reply)
	TypeRange        Type = 27 // verified streaming: a range of 16 KiB groups of one object
	TypePull         Type = 28 // cluster: fetch one object as ranges from the given sources
	TypeTrace        Type = 29 // the trace context of the next request (no reply)
	TypeWantProgress Type = 30 // the next FETCH or PULL may send PROGRESS frames before its reply (no reply)
	TypeActivity     Type = 31 // transfers under way and recent, and the node's counters (JSON reply)
	TypeProgress     Type = 10
	TypeSyncResult   Type = 11 // SyncDone: the last frame of a SYNC reply
	TypePeerResult   Type = 12
	TypeCopyBegin    Type = 20
	TypeObjectHeader Type = 21
	TypeCopyEnd      Type = 22
	TypeAck          Type = 23
	TypeAckEnd       Type = 24
	TypeDeleted      Type = 25 // TAKE: which objects the source deleted
	TypeError        Type = 0xFFFF
	ReplyBit         Type = 0x8000
)

var typeNames = map[Type]string{
	TypeHello: "HELLO", TypePing: "PING", TypeSync: "SYNC", TypeCopy: "COPY", TypeTake: "TAKE",
	TypeStat: "STAT", TypeList: "LIST", TypeFetch: "FETCH", TypeNodes: "NODES", TypeLocate: "LOCATE",
	TypePrefetch: "PREFETCH", TypeDeleteAll: "DELETE-CLUSTER", TypeDeleteLocal: "DELETE", TypeRelay: "RELAY", TypeGroup: "GROUP", TypeRange: "RANGE", TypePull: "PULL", TypeTrace: "TRACE", TypeWantProgress: "WANT-PROGRESS", TypeActivity: "ACTIVITY", TypeProgress: "PROGRESS", TypeSyncResult: "SYNC-RESULT", TypePeerResult: "PEER-RESULT",
	TypeCopyBegin: "COPY-BEGIN", TypeObjectHeader: "OBJECT", TypeCopyEnd: "COPY-END",
	TypeAck: "ACK", TypeAckEnd: "ACK-END", TypeDeleted: "DELETED", TypeError: "ERROR",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	if n, ok := typeNames[t&^ReplyBit]; ok {
		return n + "-REPLY"
	}
	return fmt.Sprintf("TYPE(%d)", uint16(t))
}

// DefaultPort is the TCP port plasma-stream-server listens on unless told
// otherwise, and DefaultAddr the server every tool talks to by default.
const (
	DefaultPort = 2021
	DefaultAddr = "127.0.0.1:2021"
)

// Role says who opened a connection.
type Role uint8

const (
	RoleClient Role = 1 // SYNC, PING, STAT, LIST
	RolePeer   Role = 2 // COPY, TAKE (another server, or a client copying directly)
)

// ID is an object id (20 bytes on the wire).
type ID = wire.ID

type (
	Enc = wire.Enc
	Dec = wire.Dec
)

func b2u(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}

// AppendFrame appends a frame of type t to dst. Request ids are unused by
// this protocol (one request at a time per connection) and always 0.
func AppendFrame(dst []byte, t Type, payload []byte) []byte {
	return wire.AppendFrame(dst, uint16(t), 0, payload)
}
