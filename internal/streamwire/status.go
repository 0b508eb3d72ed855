package streamwire

import "fmt"

// Status is the result of a request, a peer request or one object.
type Status uint16

const (
	StatusOK                  Status = 0
	StatusAlreadyPresent      Status = 1 // a success: the receiver had it
	StatusNotFound            Status = 2
	StatusStoreFull           Status = 3
	StatusPeerUnreachable     Status = 4
	StatusIntegrityFailure    Status = 5
	StatusNoObjects           Status = 6  // a peer request with no object
	StatusTooManyObjects      Status = 7  // more than 65,536 in one peer request
	StatusNoPeerRequests      Status = 8  // a SYNC with no peer request
	StatusTooManyPeerRequests Status = 9  // more than 1024 in one SYNC
	StatusDuplicateID         Status = 10 // an id twice in one request
	StatusDataTooLarge        Status = 11 // more than 16 TB
	StatusMetadataTooLarge    Status = 12 // more than 64 KiB
	StatusStoreError          Status = 13 // the local store failed
	StatusPeerStoreError      Status = 14 // the peer's store failed
	StatusServerBusy          Status = 15 // max connections reached
	StatusVersionMismatch     Status = 16
	StatusMalformed           Status = 17 // bytes that do not decode
	StatusTimeout             Status = 18
	StatusConnectionLost      Status = 19 // the peer went away mid-transfer
	StatusBadAddress          Status = 20
	StatusNotAttempted        Status = 21 // reserved: not produced by this version
	StatusProtocolError       Status = 22 // a peer broke the protocol
	StatusInternal            Status = 23
	StatusCancelled           Status = 24
	StatusNotClustered        Status = 25 // a cluster request to a standalone server
	StatusClusterUnavailable  Status = 26 // the cluster directory (etcd) did not answer in time
	StatusStoreUnavailable    Status = 27 // the local store is down; the server is reconnecting
	StatusRequestTooLarge     Status = 28 // the request would exceed the server's request memory (--request-memory)
	StatusNotPermitted        Status = 29 // the server does not serve this peer (protected mode: loopback only)
)

var statusNames = map[Status]string{
	StatusOK: "ok", StatusAlreadyPresent: "already present", StatusNotFound: "not found",
	StatusStoreFull: "store full", StatusPeerUnreachable: "peer unreachable",
	StatusIntegrityFailure: "integrity failure", StatusNoObjects: "no objects requested",
	StatusTooManyObjects: "too many objects", StatusNoPeerRequests: "no peer requests",
	StatusTooManyPeerRequests: "too many peer requests", StatusDuplicateID: "duplicate object id",
	StatusDataTooLarge: "data too large", StatusMetadataTooLarge: "metadata too large",
	StatusStoreError: "store error", StatusPeerStoreError: "peer store error",
	StatusServerBusy: "server busy", StatusVersionMismatch: "protocol version mismatch",
	StatusMalformed: "malformed request", StatusTimeout: "timed out",
	StatusConnectionLost: "connection lost", StatusBadAddress: "bad peer address",
	StatusNotAttempted: "not attempted", StatusProtocolError: "protocol error",
	StatusInternal: "internal error", StatusCancelled: "cancelled",
	StatusNotClustered: "not in a cluster", StatusClusterUnavailable: "cluster directory unavailable",
	StatusStoreUnavailable: "store unavailable", StatusRequestTooLarge: "request memory exceeded",
	StatusNotPermitted: "not permitted",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status %d", uint16(s))
}

// Success reports whether s means the object is at the receiver.
func (s Status) Success() bool { return s == StatusOK || s == StatusAlreadyPresent }

// ErrorReply answers a request that failed as a whole, and refuses a
// connection (server busy, version mismatch).
type ErrorReply struct {
	Status  Status
	Message string
}

func (m ErrorReply) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U16(uint16(m.Status))
	e.Bytes32([]byte(truncate(m.Message, MaxMessageLen)))
	return e.B
}

func (m *ErrorReply) Decode(p []byte) error {
	d := wireDec(p)
	m.Status = Status(d.U16("status"))
	m.Message = string(d.Bytes32("message", MaxMessageLen))
	return d.Done()
}

func (m ErrorReply) Error() string { return m.Message }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
