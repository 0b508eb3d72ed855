package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
)

// Handle answers one request, whose payload is p: PULL, and the cluster requests FETCH, NODES, LOCATE, PREFETCH,
// DELETE-CLUSTER and GROUP (StatusNotClustered when standalone). ctx is
// the server's: work that outlives the request (a PREFETCH without wait)
// ends with it. A returned error ends the connection.
func (n *Node) Handle(ctx context.Context, c *transfer.Conn, t streamwire.Type, p []byte) (streamwire.Status, error) {
	if t == streamwire.TypePull {
		var m streamwire.Pull
		if err := m.Decode(p); err != nil {
			return replyError(c, streamwire.StatusMalformed, fmt.Sprintf("malformed %s request: %v", t, err))
		}
		return n.pull(ctx, c, &m)
	}
	if n.dir == nil {
		return replyError(c, streamwire.StatusNotClustered, fmt.Sprintf("%s is not in a cluster (start plasma-stream-server with --etcd)", n.cfg.Name))
	}
	var body any
	var err error
	switch t {
	case streamwire.TypePrefetch:
		var m streamwire.Prefetch
		if err := m.Decode(p); err != nil {
			return replyError(c, streamwire.StatusMalformed, fmt.Sprintf("malformed PREFETCH: %v", err))
		}
		return n.prefetch(ctx, c, &m)
	case streamwire.TypeGroup:
		var m streamwire.Group
		if err := m.Decode(p); err != nil {
			return replyError(c, streamwire.StatusMalformed, fmt.Sprintf("malformed GROUP: %v", err))
		}
		change := n.dir.LeaveGroup
		if m.Join {
			change = n.dir.JoinGroup
		}
		if err := change(ctx, m.Name); err != nil {
			return n.directoryFailed(c, err, "the group change is kept and written when etcd answers again")
		}
		body = n.dir.Self().Groups
	case streamwire.TypeNodes:
		if len(p) != 0 {
			return replyError(c, streamwire.StatusMalformed, "NODES takes no payload")
		}
		if body, err = n.dir.Nodes(ctx); err != nil {
			return n.directoryFailed(c, err, "")
		}
	default: // FETCH, LOCATE, DELETE-CLUSTER: a list of ids (LOCATE: and flags)
		var m streamwire.Locate
		if t != streamwire.TypeLocate {
			var c streamwire.Copy
			err = c.Decode(p)
			m.IDs = c.IDs
		} else {
			err = m.Decode(p)
		}
		if err != nil {
			return replyError(c, streamwire.StatusMalformed, fmt.Sprintf("malformed %s: %v", t, err))
		}
		if st, msg := streamwire.ValidateIDs(m.IDs, nil); st != streamwire.StatusOK {
			return replyError(c, st, fmt.Sprintf("%s rejected: %s", t, msg))
		}
		switch t {
		case streamwire.TypeFetch:
			return n.fetch(ctx, c, m.IDs)
		case streamwire.TypeDeleteAll:
			if body, err = n.deleteEverywhere(ctx, m.IDs); err != nil {
				return n.directoryFailed(c, err, "nothing was deleted (plasma rm without --cluster deletes here only)")
			}
		case streamwire.TypeLocate:
			if m.Flags&streamwire.LocateCold != 0 {
				body, err = n.locateCold(ctx, m.IDs)
			} else {
				body, err = n.locate(ctx, m.IDs)
			}
			if err != nil {
				return n.directoryFailed(c, err, "")
			}
		}
	}
	return replyJSON(c, t, body)
}

// locate answers LOCATE: the holders of each object (JSON keys: hex ids).
func (n *Node) locate(ctx context.Context, ids []streamwire.ID) (map[streamwire.ID][]cluster.Location, error) {
	locs := map[streamwire.ID][]cluster.Location{}
	for _, id := range ids {
		l, err := n.dir.Holders(ctx, id)
		if err != nil {
			return nil, err
		}
		locs[id] = l
	}
	return locs, nil
}

// locateCold answers a LOCATE with LocateCold: the holders and the cold
// copies of each object.
func (n *Node) locateCold(ctx context.Context, ids []streamwire.ID) (map[streamwire.ID]streamwire.Placement, error) {
	locs, err := n.locate(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := map[streamwire.ID]streamwire.Placement{}
	for _, id := range ids {
		cold, err := n.dir.ColdCopies(ctx, id)
		if err != nil {
			return nil, err
		}
		out[id] = streamwire.Placement{Holders: locs[id], Cold: cold}
	}
	return out, nil
}

// replyJSON sends the JSON reply to a request of type t.
func replyJSON(c *transfer.Conn, t streamwire.Type, body any) (streamwire.Status, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return streamwire.StatusInternal, err
	}
	return streamwire.StatusOK, c.Send(t|streamwire.ReplyBit, streamwire.JSON{Body: b}.Append(nil))
}

// replyError answers a request that failed as a whole.
func replyError(c *transfer.Conn, st streamwire.Status, msg string) (streamwire.Status, error) {
	return st, c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: st, Message: msg}.Append(nil))
}

// storeFailed answers a request the local store could not serve (it is
// down: StoreUnavailable, saying since when).
func storeFailed(c *transfer.Conn, err error) (streamwire.Status, error) {
	er := streamwire.ReplyFor(err, streamwire.StatusStoreError)
	return er.Status, c.Send(streamwire.TypeError, er.Append(nil))
}

// directoryFailed answers a request the directory failed; then says what
// became of it ("" if nothing needs saying).
func (n *Node) directoryFailed(c *transfer.Conn, err error, then string) (streamwire.Status, error) {
	st, msg := directoryError(err)
	if then != "" {
		msg += "; " + then
	}
	return replyError(c, st, n.cfg.Name+": "+msg)
}

// directoryError is the status and sentence of a failed directory
// operation: StatusClusterUnavailable when etcd did not answer in time.
func directoryError(err error) (streamwire.Status, string) {
	if errors.Is(err, cluster.ErrUnavailable) {
		return streamwire.StatusClusterUnavailable, err.Error() + "; local objects are still served"
	}
	return streamwire.StatusStoreError, fmt.Sprintf("the cluster directory (etcd) failed: %v", err)
}
