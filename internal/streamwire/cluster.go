package streamwire

import (
	"errors"
	"time"

	"github.com/plasmastream/plasmastream/internal/wire"
)

// The JSON replies of the cluster requests (NODES, LOCATE, PREFETCH,
// DELETE-CLUSTER, PULL). Each is defined once, here: the server encodes
// it, the public stream package re-exports it, and the cluster directory
// stores Node as its node record.

// Node is a member of the cluster, as registered in its directory (this
// is also the directory's node record in etcd).
type Node struct {
	Name    string    `json:"name"`
	Address string    `json:"address"` // host:port its peers dial
	Groups  []string  `json:"groups"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	// Key is the node's public key (64 hex) when it runs with one
	// (-k/--private-key): peers may trust it through the directory
	// (docs/trust.md, "Trust in a cluster").
	Key string `json:"key,omitempty"`
}

// Location says that a node holds an object (a hint: it may be stale).
type Location struct {
	Node    string      `json:"node"`
	Address string      `json:"address"`
	Size    uint64      `json:"size"`
	Digest  wire.Digest `json:"digest,omitzero"` // BLAKE3-256 root (64 hex), left out when unknown
}

// ColdCopy says that a cold tier holds an object: the directory's cold
// record (docs/cluster.md). Unlike a Location it is tied to no node's
// lease: the copy outlives the node that wrote it. A hint, as a Location
// is: the tier may have lost the copy since.
type ColdCopy struct {
	Tier    string      `json:"tier"`           // the tier's URL, without credentials: file:///dir or s3://bucket/prefix
	Host    string      `json:"host,omitempty"` // for a file:// tier, the machine whose directory it is
	Size    uint64      `json:"size"`           // data size plus metadata size, in bytes
	Digest  wire.Digest `json:"digest"`         // BLAKE3-256 root of the data
	Node    string      `json:"node"`           // the node whose store wrote it
	Written time.Time   `json:"written"`        // when that node recorded it
}

// Where names the tier: its URL, and for a file:// tier the machine
// ("file:///var/lib/plasma/cold on host1").
func (c ColdCopy) Where() string {
	if c.Host == "" {
		return c.Tier
	}
	return c.Tier + " on " + c.Host
}

// Placement is where an object is: the nodes holding it in memory and
// the cold tiers holding a copy (the reply of a LOCATE with
// LocateCold).
type Placement struct {
	Holders []Location `json:"holders"`
	Cold    []ColdCopy `json:"cold"`
}

// NodeOutcome is what a prefetch or a cluster delete did on one node.
type NodeOutcome struct {
	Node     string        `json:"node"`
	Address  string        `json:"address"`
	Status   string        `json:"status"`
	OK       bool          `json:"ok"`
	Message  string        `json:"message,omitempty"`
	Source   string        `json:"source,omitempty"`
	Duration time.Duration `json:"duration"`
}

// SourceStat is what one source contributed to a fetch or a pull.
type SourceStat struct {
	Node    string `json:"node"`
	Address string `json:"address"`
	Bytes   uint64 `json:"bytes"`
	Failed  string `json:"failed,omitempty"`
}

// PullOutcome is the reply to PULL.
type PullOutcome struct {
	Node     string        `json:"node"`
	Status   string        `json:"status"`
	Code     uint16        `json:"code"` // Status as its number
	OK       bool          `json:"ok"`
	Message  string        `json:"message,omitempty"`
	Bytes    uint64        `json:"bytes"`
	Resumed  uint64        `json:"resumed"` // bytes already verified there from an earlier attempt
	Sources  []SourceStat  `json:"sources"`
	Duration time.Duration `json:"duration"`
}

// ReplyFor is the error reply err carries (an *ErrorReply anywhere in its
// chain), else one of status fallback with err's sentence.
func ReplyFor(err error, fallback Status) *ErrorReply {
	var er *ErrorReply
	if !errors.As(err, &er) {
		er = &ErrorReply{Status: fallback, Message: err.Error()}
	}
	return er
}
