package streaming

import (
	"encoding/hex"
	"time"
)

// PairView is a pair in the shape people read (plasma state read --json):
// keys and ids in hex, values decoded by store.
type PairView struct {
	Store  string `json:"store"`
	Delete bool   `json:"delete,omitempty"`
	Key    string `json:"key"`
	Value  any    `json:"value,omitempty"`
}

// View decodes p's value by its store: an ObjectInfo or ObjectRemoval
// for `objects`, a Transfer for `transfers`, the JSON record as text for
// the cluster stores; bytes it cannot decode are shown in hex.
func View(p StoreKVPair) PairView {
	v := PairView{Store: p.StoreKey, Delete: p.Delete, Key: hex.EncodeToString(p.Key)}
	if len(p.Value) == 0 {
		return v
	}
	v.Value = hex.EncodeToString(p.Value)
	switch {
	case p.StoreKey == StoreObjects && p.Delete:
		var r ObjectRemoval
		if r.Decode(p.Value) == nil {
			reason := map[uint64]string{RemovedDeleted: "deleted", RemovedEvicted: "evicted"}[r.Reason]
			v.Value = map[string]any{"reason": reason, "time": r.Time.UTC().Format(time.RFC3339Nano)}
		}
	case p.StoreKey == StoreObjects:
		var o ObjectInfo
		if o.Decode(p.Value) == nil {
			m := map[string]any{"data_size": o.DataSize, "metadata_size": o.MetadataSize,
				"created": o.Created.UTC().Format(time.RFC3339Nano), "construct_ns": int64(o.Construct), "creator_pid": o.CreatorPID}
			if len(o.Metadata) > 0 {
				m["metadata"] = hex.EncodeToString(o.Metadata)
			}
			if len(o.Digest) > 0 {
				m["digest"] = hex.EncodeToString(o.Digest)
			}
			v.Value = m
		}
	case p.StoreKey == StoreTransfers:
		var t Transfer
		if t.Decode(p.Value) == nil {
			objs := make([]map[string]any, len(t.Objects))
			for i, o := range t.Objects {
				objs[i] = map[string]any{"id": hex.EncodeToString(o.ID), "bytes": o.Bytes, "status": o.Status}
			}
			v.Value = map[string]any{"direction": t.Direction, "kind": t.Kind, "peer": t.Peer, "bytes": t.Bytes,
				"duration_ns": int64(t.Duration), "end": t.End.UTC().Format(time.RFC3339Nano), "status": t.Status, "objects": objs, "objects_omitted": t.ObjectsOmitted}
		}
	default: // the cluster stores: JSON records
		v.Value = string(p.Value)
	}
	return v
}
