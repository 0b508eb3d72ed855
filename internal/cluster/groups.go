package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Group membership, and the registered nodes.

// JoinGroup adds this node to group (no-op if a member already). Errors as
// for AddLocation.
func (d *Directory) JoinGroup(ctx context.Context, group string) error {
	if err := validName("group", group); err != nil {
		return err
	}
	return d.mutate(ctx, func() {
		if !slices.Contains(d.self.Groups, group) {
			d.self.Groups = normGroups(append(d.self.Groups, group))
		}
		delete(d.removedGroups, group)
		d.dirtyNode = true
	})
}

// LeaveGroup removes this node from group. Errors as for AddLocation.
func (d *Directory) LeaveGroup(ctx context.Context, group string) error {
	if err := validName("group", group); err != nil {
		return err
	}
	return d.mutate(ctx, func() {
		if i := slices.Index(d.self.Groups, group); i >= 0 {
			d.self.Groups = slices.Delete(d.self.Groups, i, i+1)
			d.removedGroups[group] = struct{}{}
		}
		d.dirtyNode = true
	})
}

// Nodes lists the registered nodes, sorted by name.
func (d *Directory) Nodes(parent context.Context) ([]Node, error) {
	if err := d.usable(); err != nil {
		return nil, err
	}
	ctx, cancel := d.opCtx(parent)
	defer cancel()
	resp, err := d.cli.Get(ctx, d.prefix+"nodes/", clientv3.WithPrefix())
	if err != nil {
		return nil, d.failed(parent, "nodes", err)
	}
	out := make([]Node, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		n, err := parseNode(kv.Value)
		if err != nil {
			d.log.Warn("ignoring malformed node record", "key", string(kv.Key), "err", err)
			continue
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// GroupMembers lists the registered nodes in group, sorted by name.
func (d *Directory) GroupMembers(parent context.Context, group string) ([]Node, error) {
	if err := d.usable(); err != nil {
		return nil, err
	}
	if err := validName("group", group); err != nil {
		return nil, err
	}
	ctx, cancel := d.opCtx(parent)
	defer cancel()
	what := fmt.Sprintf("members of group %q", group)
	p := d.prefix + "groups/" + group + "/"
	resp, err := d.cli.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, d.failed(parent, what, err)
	}
	names := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if name := strings.TrimPrefix(string(kv.Key), p); name != "" && !strings.Contains(name, "/") {
			names = append(names, name)
		}
	}
	nodes, err := d.nodesNamed(ctx, names)
	if err != nil {
		return nil, d.failed(parent, what, err)
	}
	return nodes, nil
}

// nodesNamed reads the records of the named nodes, leaving out those not
// registered, sorted by name.
func (d *Directory) nodesNamed(ctx context.Context, names []string) ([]Node, error) {
	slices.Sort(names)
	names = slices.Compact(names)
	out := make([]Node, 0, len(names))
	for len(names) > 0 {
		n := min(len(names), maxTxnOps)
		ops := make([]clientv3.Op, n)
		for i, name := range names[:n] {
			ops[i] = clientv3.OpGet(d.nodeKey(name))
		}
		resp, err := d.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, err
		}
		for _, r := range resp.Responses {
			for _, kv := range r.GetResponseRange().GetKvs() {
				node, err := parseNode(kv.Value)
				if err != nil {
					d.log.Warn("ignoring malformed node record", "key", string(kv.Key), "err", err)
					continue
				}
				out = append(out, node)
			}
		}
		names = names[n:]
	}
	return out, nil
}
