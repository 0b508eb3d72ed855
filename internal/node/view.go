package node

import (
	"context"

	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/streamwire"
)

// What the dashboard shows of the cluster: the same as NODES and LOCATE
// answer a caller with the read role.

// Clustered reports whether the node is in a cluster.
func (n *Node) Clustered() bool { return n.dir != nil }

// Nodes lists the registered nodes (nil when standalone).
func (n *Node) Nodes(ctx context.Context) ([]cluster.Node, error) {
	if n.dir == nil {
		return nil, nil
	}
	return n.dir.Nodes(ctx)
}

// Placements lists the holders and the cold copies of each object (nil
// when standalone).
func (n *Node) Placements(ctx context.Context, ids []streamwire.ID) (map[streamwire.ID]streamwire.Placement, error) {
	if n.dir == nil {
		return nil, nil
	}
	return n.locateCold(ctx, ids)
}

// Locate lists the holders of each object (nil when standalone).
func (n *Node) Locate(ctx context.Context, ids []streamwire.ID) (map[streamwire.ID][]cluster.Location, error) {
	if n.dir == nil {
		return nil, nil
	}
	return n.locate(ctx, ids)
}
