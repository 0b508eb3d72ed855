package store

import (
	"context"
	"fmt"
	"time"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// State of an object.
type State string

const (
	StateCreated State = "created" // being written by its creator
	StateSealed  State = "sealed"  // immutable and visible
	// StateCold is a sealed object held only in the store's cold tier:
	// a Get restores it into memory.
	StateCold State = "cold"
)

// ObjectInfo describes one object, as List returns it.
type ObjectInfo struct {
	ID                ObjectID      `json:"id"`
	DataSize          uint64        `json:"data_size"`
	MetadataSize      uint32        `json:"metadata_size"`
	RefCount          uint32        `json:"ref_count"`
	State             State         `json:"state"`
	CreateTime        time.Time     `json:"create_time"`
	ConstructDuration time.Duration `json:"construct_duration"` // -1 while unsealed
	CreatorPID        uint32        `json:"creator_pid"`
	DeletePending     bool          `json:"delete_pending"`
	LastUse           time.Time     `json:"last_use"`
	Offset            uint64        `json:"offset"`
	Digest            Digest        `json:"digest,omitzero"` // BLAKE3 (64 hex), when known
	// Cold: the store's cold tier holds a copy (State sealed: also in
	// memory; State cold: only there).
	Cold bool `json:"cold,omitempty"`
}

// List describes every object in the store, sealed or not, in arena order.
func (c *Client) List(ctx context.Context) ([]ObjectInfo, error) {
	var out []ObjectInfo
	err := c.ListPages(ctx, func(page []byte) error {
		infos, _, err := UnmarshalListPage(page)
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		out = append(out, infos...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListPages is List without decoding: it hands f each page of the
// store's List reply as it arrives (the store protocol's layout, which
// UnmarshalListPage decodes; only its length is checked here), in order,
// and stops after the last page or at f's first error, which it returns
// as is. plasma-stream-server forwards the pages so for a remote LIST. f
// may keep page.
func (c *Client) ListPages(ctx context.Context, f func(page []byte) error) error {
	p, err := c.m.start(storewire.TypeList, nil)
	if err != nil {
		return err
	}
	for {
		fr, ok, err := c.m.recv(ctx, p, nil)
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		if fr, err = c.m.check(storewire.TypeList, fr, ok); err != nil {
			return err
		}
		more, err := storewire.ListPageMore(fr.p)
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		if err := f(fr.p); err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

// UnmarshalListPage decodes one page of a List reply of the store
// protocol. plasma-stream-server forwards such pages for a remote LIST;
// the stream client decodes them with this.
func UnmarshalListPage(p []byte) (infos []ObjectInfo, more bool, err error) {
	var page storewire.ListReply
	if err := page.Decode(p); err != nil {
		return nil, false, err
	}
	for _, in := range page.Infos {
		infos = append(infos, infoFromWire(in))
	}
	return infos, page.More, nil
}

func infoFromWire(in storewire.Info) ObjectInfo {
	info := ObjectInfo{
		ID: in.ID, DataSize: in.DataSize, MetadataSize: in.MetaSize, RefCount: in.RefCount,
		State: StateCreated, CreateTime: time.Unix(0, in.CreateTimeNs),
		ConstructDuration: time.Duration(in.ConstructNs), CreatorPID: in.CreatorPID,
		DeletePending: in.DeletePending, Offset: in.Offset,
	}
	switch in.State {
	case storewire.StateSealed:
		info.State = StateSealed
	case storewire.StateSealedCold:
		info.State, info.Cold = StateSealed, true
	case storewire.StateCold:
		info.State, info.Cold = StateCold, true
	}
	if in.LastUseUnixNs != 0 {
		info.LastUse = time.Unix(0, in.LastUseUnixNs)
	}
	if in.HasDigest {
		info.Digest = in.Digest
	}
	return info
}

// Stats is the store's accounting.
type Stats struct {
	Capacity     uint64 `json:"capacity"`
	Used         uint64 `json:"used"`
	Objects      uint64 `json:"objects"`
	Sealed       uint64 `json:"sealed"`
	Pinned       uint64 `json:"pinned"`
	LargestFree  uint64 `json:"largest_free"`
	FreeBlocks   uint64 `json:"free_blocks"`
	Evictions    uint64 `json:"evictions"`
	EvictedBytes uint64 `json:"evicted_bytes"`
	Compactions  uint64 `json:"compactions"`
	MovedBytes   uint64 `json:"moved_bytes"`
	Clients      uint64 `json:"clients"`
}

// Stats returns the store's capacity, usage and counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	f, err := c.m.call(ctx, storewire.TypeStats, nil, nil)
	if err != nil {
		return Stats{}, err
	}
	var r storewire.StatsReply
	if err := r.Decode(f.p); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	return Stats(r), nil
}
