package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/tracing"
	"github.com/plasmastream/plasmastream/internal/transfer"
)

// Every exchange with another node goes through transfer.DialNode:
// transfers (COPY, RANGE) as a peer, and the requests a node sends on
// behalf of its own (PULL, SYNC, DELETE) as a client named for the
// purpose. With keys, whoever named the address (a PULL's --from) learns
// nothing of what listens there unless it is a trusted node.

// dialPeer connects to another node's stream server for a transfer.
func (n *Node) dialPeer(ctx context.Context, addr string) (*transfer.Conn, error) {
	return transfer.DialNode(ctx, addr, streamwire.RolePeer, n.cfg.Name, n.cfg.IOTimeout, n.cfg.TLS, n.log)
}

// request runs one request on a connection of its own to the server at
// addr, named name/purpose in its logs; ctx ends the wait for the reply.
// A refusal or failure reply is returned as an *streamwire.ErrorReply
// naming the server, anything else as an error naming it.
func (n *Node) request(ctx context.Context, addr, purpose string, f func(*transfer.Conn) error) (err error) {
	ctx, span := tracing.Start(ctx, "plasma.peer."+purpose, trace.SpanKindClient, attribute.String("plasma.peer", addr))
	defer func() { tracing.End(span, "", err) }()
	c, err := transfer.DialNode(ctx, addr, streamwire.RoleClient, n.cfg.Name+"/"+purpose, n.cfg.IOTimeout, n.cfg.TLS, n.log)
	if err == nil {
		err = c.Propagate(ctx)
	}
	if err == nil {
		stop := c.CloseOnDone(ctx)
		err = f(c)
		stop()
		c.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
	}
	if err == nil {
		return nil
	}
	var er *streamwire.ErrorReply
	if errors.As(err, &er) {
		return &streamwire.ErrorReply{Status: er.Status, Message: fmt.Sprintf("%s: %s", addr, er.Message)}
	}
	return fmt.Errorf("stream server %s: %w", addr, err)
}

// pullOn asks the node at addr to PULL object id from sources, taking
// slice own of slices from the full ones.
func (n *Node) pullOn(ctx context.Context, addr string, id streamwire.ID, sources []streamwire.PullSource, own, slices int) (streamwire.PullOutcome, error) {
	var out streamwire.PullOutcome
	m := streamwire.Pull{ID: id, Sources: sources, Own: uint32(own), Slices: uint32(slices)}
	err := n.request(ctx, addr, "prefetch", func(c *transfer.Conn) error {
		if err := c.RequestJSON(streamwire.TypePull, m.Append(nil), &out); err != nil {
			return err
		}
		if !out.OK {
			return &streamwire.ErrorReply{Status: streamwire.Status(out.Code), Message: out.Message}
		}
		return nil
	})
	return out, err
}

// deleteOnPeer asks the node at addr to delete ids from its store; it
// returns the failures other than absent objects, one sentence each.
func (n *Node) deleteOnPeer(ctx context.Context, addr string, ids []streamwire.ID) ([]string, error) {
	var msgs []string
	err := n.request(ctx, addr, "delete", func(c *transfer.Conn) error {
		return c.RequestJSON(streamwire.TypeDeleteLocal, streamwire.Copy{IDs: ids}.Append(nil), &msgs)
	})
	return msgs, err
}

// syncOn asks the node at addr to fetch object id from the server at from
// (a SYNC of one peer request of kind). It returns an *ErrorReply with
// the SYNC's status when it failed.
func (n *Node) syncOn(ctx context.Context, addr string, kind streamwire.Kind, from string, id streamwire.ID) error {
	m := streamwire.Sync{Peers: []streamwire.PeerRequest{{Kind: kind, Addr: from, IDs: []streamwire.ID{id}}}}
	return n.request(ctx, addr, "prefetch", func(c *transfer.Conn) error {
		if err := c.Send(streamwire.TypeSync, m.Append(nil)); err != nil {
			return err
		}
		var firstFailed string
		for {
			// Progress frames come every 250 ms, so a silent server is dead.
			t, p, err := c.ReadFrame(streamwire.MaxControlFrame)
			if err != nil {
				return err
			}
			switch t {
			case streamwire.TypeProgress:
			case streamwire.TypePeerResult:
				var pr streamwire.PeerResult
				if err := pr.Decode(p); err != nil {
					return &transfer.ProtocolError{Msg: err.Error()}
				}
				for _, o := range pr.Objects {
					if !o.Status.Success() && firstFailed == "" {
						firstFailed = o.Message
					}
				}
			case streamwire.TypeSyncResult:
				var d streamwire.SyncDone
				if err := d.Decode(p); err != nil {
					return &transfer.ProtocolError{Msg: err.Error()}
				}
				if d.Status == streamwire.StatusOK {
					return nil
				}
				msg := []string{d.Message}
				if firstFailed != "" {
					msg = append(msg, "first: "+firstFailed)
				}
				return &streamwire.ErrorReply{Status: d.Status, Message: strings.Join(msg, "; ")}
			case streamwire.TypeError:
				var e streamwire.ErrorReply
				e.Decode(p)
				return &e
			default:
				return &transfer.ProtocolError{Msg: fmt.Sprintf("got %s in a SYNC reply", t)}
			}
		}
	})
}
