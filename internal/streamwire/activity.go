package streamwire

import "time"

// ACTIVITY's reply (JSON): what plasma top and the dashboard show of a
// node's transfers.

// Activity is a node's transfer counters since it started and its
// transfers.
type Activity struct {
	Node            string    `json:"node"`
	Time            time.Time `json:"time"`
	Started         time.Time `json:"started"`
	Connections     int64     `json:"connections"`
	BytesSent       uint64    `json:"bytes_sent"`
	ObjectsSent     uint64    `json:"objects_sent"`
	BytesReceived   uint64    `json:"bytes_received"` // of objects received whole
	ObjectsReceived uint64    `json:"objects_received"`
	BytesVerified   uint64    `json:"bytes_verified"` // of verified streaming (RANGE fetches)
	// Arriving counts bytes of incoming transfers as they arrive (a
	// rate that moves during one large object).
	Arriving  int64     `json:"arriving"`
	Transfers Transfers `json:"transfers"`
}

// TransferOutcome is what became of one object.
type TransferOutcome struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	OK      bool   `json:"ok"`
	Bytes   uint64 `json:"bytes"`
	Message string `json:"message,omitempty"`
}

// TransferRecord is a transfer, under way (Outcomes empty, Duration so far) or
// finished.
type TransferRecord struct {
	ID       uint64            `json:"id"`
	Kind     string            `json:"kind"`
	Peer     string            `json:"peer"`
	Start    time.Time         `json:"start"`
	Duration float64           `json:"seconds"`
	Bytes    int64             `json:"bytes"`
	Total    int64             `json:"total"` // 0: not known yet
	Objects  int               `json:"objects"`
	Done     int64             `json:"done"`   // objects completed
	Failed   int               `json:"failed"` // objects that failed (finished transfers)
	Error    string            `json:"error,omitempty"`
	Outcomes []TransferOutcome `json:"outcomes,omitempty"`
	Finished bool              `json:"finished"`
}

// TransferError is a failure worth an operator's eye.
type TransferError struct {
	Time    time.Time `json:"time"`
	Where   string    `json:"where"`
	Message string    `json:"message"`
}

// Transfers are a node's transfers under way and recent, newest first,
// and its recent errors.
type Transfers struct {
	Active []TransferRecord `json:"active"`
	Recent []TransferRecord `json:"recent"`
	Errors []TransferError  `json:"errors"`
}
