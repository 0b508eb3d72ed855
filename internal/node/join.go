package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/etcdembed"
	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/store"
)

// join starts or connects to etcd, registers this node and the store's
// sealed objects.
func (n *Node) join(ctx context.Context, st *store.Client) error {
	cc := n.cfg.Cluster
	log := n.log
	endpoints := strings.Split(cc.Etcd, ",")
	if cc.Etcd == "embedded" {
		// SetDefaults and Validate ran: EtcdDir and EtcdListen are set.
		m, err := etcdembed.Start(ctx, etcdembed.Config{Dir: cc.EtcdDir, ClientURL: cc.EtcdListen, Name: n.cfg.Name, Logger: log,
			TLS: etcdembed.TLSFiles{CertFile: cc.EtcdCert, KeyFile: cc.EtcdKey, CAFile: cc.EtcdCA}})
		if err != nil {
			return fmt.Errorf("embedded etcd: %w", err)
		}
		n.member, endpoints = m, m.Endpoints()
	}
	var tlsCfg *tls.Config
	if cc.EtcdSecured() {
		var err error
		if tlsCfg, err = trust.ClientConfig(cc.EtcdCert, cc.EtcdKey, cc.EtcdCA); err != nil {
			return fmt.Errorf("etcd client certificate: %w", err)
		}
	}
	cli, err := cluster.Dial(endpoints, tlsCfg, log)
	if err != nil {
		return fmt.Errorf("etcd at %s: %w", strings.Join(endpoints, ","), err)
	}
	n.cli = cli
	self := cluster.Node{Name: n.cfg.Name, Address: n.cfg.Advertise, Groups: cc.Groups, Version: cliutil.Version, Started: time.Now(), Key: n.cfg.Key}
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	dir, err := cluster.Open(octx, cluster.Config{Client: cli, Prefix: cc.Prefix, Self: self, LeaseTTL: cc.LeaseTTL, OpTimeout: cc.EtcdTimeout, Logger: log})
	if err != nil {
		return fmt.Errorf("register node %s in etcd at %s: %w", self.Name, strings.Join(endpoints, ","), err)
	}
	n.dir = dir
	n.mem = dir.WatchMembers(n.cfg.OnMembers)
	if err := n.Resync(ctx, st); err != nil {
		return err
	}
	n.log.Info("joined the cluster", "node", self.Name, "advertise", self.Address, "groups", cc.Groups, "etcd", strings.Join(endpoints, ","))
	return nil
}

// Resync makes the directory's locations of this node those of the
// store's sealed objects: it withdraws what the store no longer has (a
// store that restarted comes back empty) and registers the rest. The
// store's subscription is already in place, so nothing sealed meanwhile
// is missed (adding a location twice is harmless). Registrations never
// wait for etcd: the directory queues them (within a bound) and writes
// them in the background, at once or when etcd is back. Standalone, it
// does nothing.
func (n *Node) Resync(ctx context.Context, st *store.Client) error {
	if n.dir == nil {
		return nil
	}
	infos, err := st.List(ctx)
	if err != nil {
		return fmt.Errorf("list the store: %w", err)
	}
	held := make(map[store.ObjectID]bool, len(infos))
	for _, in := range infos {
		held[in.ID] = in.State == store.StateSealed && !in.DeletePending
	}
	if err := n.dir.RetainLocations(ctx, func(id store.ObjectID) bool { return held[id] }); err != nil {
		n.log.Warn("directory: withdraw the locations the store lost", "component", "cluster", "err", err)
	}
	for _, in := range infos {
		if held[in.ID] {
			n.add(in.ID, in.DataSize+uint64(in.MetadataSize), in.Digest)
		}
	}
	// What the store's tier holds, listed at its start or written since:
	// recorded unless another node's record is there (it wrote them).
	if n.learnColdTier(ctx, st) != "" {
		now := store.Event{Time: time.Now()}
		for _, in := range infos {
			if in.Cold && !in.DeletePending && !in.Digest.IsZero() {
				n.dir.QueueColdCopy(in.ID, n.coldCopy(in.DataSize+uint64(in.MetadataSize), in.Digest, now), true)
			}
		}
	}
	return nil
}

// Event mirrors one store notification: a seal adds a location, a digest
// the store learned later completes it, a delete or eviction removes it.
// It never waits for etcd (the store drops a subscriber that falls
// behind): the directory queues the change. The store's events come in
// order, so a deletion is always mirrored after the digest of the object
// it deletes. Standalone, it does nothing.
func (n *Node) Event(ev store.Event) {
	if n.dir == nil {
		return
	}
	switch ev.Kind {
	case store.EventSealed, store.EventDigest:
		n.add(ev.ID, ev.DataSize+uint64(ev.MetadataSize), ev.Digest)
	case store.EventDeleted, store.EventEvicted:
		n.dir.QueueRemoval(ev.ID) // fails only once closed
	case store.EventCold, store.EventColdDeleted:
		n.coldEvent(ev)
	}
}

// add queues a location (the directory logs failed writes itself).
func (n *Node) add(id store.ObjectID, size uint64, digest store.Digest) {
	n.dir.QueueLocation(id, size, digest) // fails only once closed
}

// WatchDirectory calls fn with the cluster directory as this node sees
// it, then every change, until ctx ends (see cluster.Directory.Watch). It
// returns at once when the node is standalone.
func (n *Node) WatchDirectory(ctx context.Context, fn func(cluster.Change)) {
	if n.dir != nil {
		n.dir.Watch(ctx, fn)
	}
}
