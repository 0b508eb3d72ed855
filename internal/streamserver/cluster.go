package streamserver

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/internal/cluster"
	"github.com/plasmastream/plasmastream/internal/etcdembed"
	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
	"github.com/plasmastream/plasmastream/store"
	"golang.org/x/sync/errgroup"
)

// ClusterConfig joins a server to the cluster directory.
type ClusterConfig struct {
	Etcd       string        // "" standalone, "embedded", or client URLs separated by commas
	EtcdDir    string        // data of the embedded member
	EtcdListen string        // client address of the embedded member (host:port)
	Prefix     string        // key prefix (default /plasma/)
	Advertise  string        // host:port peers dial (default: derived from --bind and the port)
	Groups     []string      // groups this node belongs to
	LeaseTTL   time.Duration // registration lease (default 10 s)
	// EtcdTimeout bounds each directory operation a request waits for
	// (default cluster.DefaultOpTimeout, 3 s): with etcd down, cluster
	// requests fail within it with StatusClusterUnavailable.
	EtcdTimeout time.Duration
}

// clusterNode is a stream server's part of the cluster: its etcd client
// (and embedded member), its directory registration, the goroutine that
// mirrors the local store's seals and deletions into the directory, and
// the fetches in flight.
type clusterNode struct {
	member *etcdembed.Member
	cli    *clientv3.Client
	dir    *cluster.Directory
	sub    *store.Subscription
	log    *slog.Logger
	wg     sync.WaitGroup
	later  chan pendingDigest // locations registered without a digest
	stop   chan struct{}
}

// pendingDigest is a location whose digest the store has not computed yet.
type pendingDigest struct {
	id     store.ObjectID
	size   uint64
	sealed time.Time
}

// digestWait is how long after a seal without a digest the directory
// asks the store for it: the store hashes such objects a second after
// Seal, so by then it usually has it (and computes it at once if not).
const digestWait = 1500 * time.Millisecond

// joinCluster starts or connects to etcd, registers this node and starts
// mirroring the store into the directory.
func (s *Server) joinCluster(ctx context.Context) error {
	cc := s.cfg.Cluster
	n := &clusterNode{log: s.log.With("component", "cluster")}
	endpoints := strings.Split(cc.Etcd, ",")
	if cc.Etcd == "embedded" {
		dir := cc.EtcdDir
		if dir == "" {
			return errors.New("--etcd embedded needs --etcd-dir, the directory of the embedded member's data")
		}
		listen := cc.EtcdListen
		if listen == "" {
			listen = "127.0.0.1:2379"
		}
		m, err := etcdembed.Start(ctx, etcdembed.Config{Dir: dir, ClientURL: "http://" + listen, Name: s.cfg.NodeName, Logger: n.log})
		if err != nil {
			return fmt.Errorf("embedded etcd: %w", err)
		}
		n.member, endpoints = m, m.Endpoints()
	}
	cli, err := cluster.Dial(endpoints, n.log)
	if err != nil {
		n.close()
		return fmt.Errorf("etcd at %s: %w", strings.Join(endpoints, ","), err)
	}
	n.cli = cli
	self := cluster.Node{Name: s.cfg.NodeName, Address: s.advertise(), Groups: cc.Groups, Version: cliutil.Version, Started: time.Now()}
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	n.dir, err = cluster.Open(octx, cluster.Config{Client: cli, Prefix: cc.Prefix, Self: self, LeaseTTL: cc.LeaseTTL, OpTimeout: cc.EtcdTimeout, Logger: n.log})
	if err != nil {
		n.close()
		return fmt.Errorf("register node %s in etcd at %s: %w", self.Name, strings.Join(endpoints, ","), err)
	}
	if err := n.mirror(ctx, s.st, s.cfg.PlasmaSocket); err != nil {
		n.close()
		return err
	}
	s.cluster = n
	s.log.Info("joined the cluster", "node", self.Name, "advertise", self.Address, "groups", cc.Groups, "etcd", strings.Join(endpoints, ","))
	return nil
}

// advertise is the address peers dial to reach this server.
func (s *Server) advertise() string {
	if a := s.cfg.Cluster.Advertise; a != "" {
		return a
	}
	port := s.ln.Addr().(*net.TCPAddr).Port
	host := s.cfg.Bind
	if host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
		host = s.cfg.NodeName
	}
	return net.JoinHostPort(host, fmt.Sprint(port))
}

// mirror registers every sealed object of the store and then follows the
// store's events: a seal adds a location, a delete or eviction removes it.
// It subscribes before listing, so nothing sealed in between is missed
// (adding a location twice is harmless). It never waits for etcd: the
// directory queues the changes (within a bound) and writes them in the
// background, at once or when etcd is back, so an etcd outage neither
// stalls the events (the store would drop a subscriber that falls behind)
// nor loses them.
func (n *clusterNode) mirror(ctx context.Context, st *store.Client, socket string) error {
	sub, err := store.Subscribe(ctx, socket)
	if err != nil {
		return fmt.Errorf("subscribe to the store: %w", err)
	}
	n.sub = sub
	infos, err := st.List(ctx)
	if err != nil {
		return fmt.Errorf("list the store: %w", err)
	}
	n.later, n.stop = make(chan pendingDigest, 1<<16), make(chan struct{})
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.addDigests(st) }()
	for _, in := range infos {
		if in.State == store.StateSealed && !in.DeletePending {
			n.sealed(in.ID, in.DataSize+uint64(in.MetadataSize), in.Digest)
		}
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for ev := range sub.Events() {
			switch ev.Kind {
			case store.EventSealed:
				n.sealed(ev.ID, ev.DataSize+uint64(ev.MetadataSize), ev.Digest)
			default:
				n.dir.QueueRemoval(ev.ID) // fails only once closed
			}
		}
		if err := sub.Err(); err != nil && !errors.Is(err, store.ErrClosed) {
			n.log.Error("store subscription ended: the directory no longer follows this store", "err", err)
		}
	}()
	return nil
}

// sealed registers a location; one without a digest gets it later.
func (n *clusterNode) sealed(id store.ObjectID, size uint64, digestHex string) {
	n.add(id, size, digestHex)
	if digestHex == "" {
		select {
		case n.later <- pendingDigest{id, size, time.Now()}:
		default: // a backlog: those locations stay without a digest
		}
	}
}

// addDigests completes the locations registered without a digest, in
// seal order, each digestWait after its seal.
func (n *clusterNode) addDigests(st *store.Client) {
	for {
		var p pendingDigest
		select {
		case <-n.stop:
			return
		case p = <-n.later:
		}
		select {
		case <-n.stop:
			return
		case <-time.After(time.Until(p.sealed.Add(digestWait))):
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if d, ok := objectDigest(ctx, st, p.id); ok {
			n.add(p.id, p.size, hex.EncodeToString(d[:]))
			if ok, err := st.Contains(ctx, p.id); err == nil && !ok {
				n.dir.QueueRemoval(p.id) // deleted while we registered it
			}
		}
		cancel()
	}
}

// objectDigest is the digest the store has for a sealed object, which it
// computes at once if its background hasher has not yet.
func objectDigest(ctx context.Context, st *store.Client, id store.ObjectID) ([32]byte, bool) {
	o, err := st.GetOne(ctx, id, 0)
	if err != nil {
		return [32]byte{}, false
	}
	d, known := o.Digest, o.HasDigest
	st.Release(ctx, id)
	if !known { // Outboard also brings the outboard: only when we must
		var err error
		d, _, err = st.Outboard(ctx, id)
		known = err == nil
	}
	return d, known
}

// add queues a location (the directory logs failed writes itself).
func (n *clusterNode) add(id store.ObjectID, size uint64, digestHex string) {
	var digest *[32]byte
	if d, err := hex.DecodeString(digestHex); err == nil && len(d) == 32 {
		digest = (*[32]byte)(d)
	}
	n.dir.QueueLocation(id, size, digest) // fails only once closed
}

func (n *clusterNode) close() {
	if n.stop != nil {
		close(n.stop)
	}
	if n.sub != nil {
		n.sub.Close()
	}
	n.wg.Wait()
	if n.dir != nil {
		n.dir.Close()
	}
	if n.cli != nil {
		n.cli.Close()
	}
	if n.member != nil {
		n.member.Close()
	}
}

// fetch makes each object available in the local store, pulling missing
// ones from the holders found in the directory: verified ranges from all
// of them at once (a stale location or a corrupt holder costs its own
// ranges, which the others take over). Concurrent fetches of one object
// share one transfer. The objects it reports here are referenced in held,
// which the caller releases once the reply is sent: the objects of one
// FETCH never evict each other (what does not fit is StoreFull).
func (s *Server) fetch(ctx context.Context, ids []streamwire.ID, held *transfer.Held) streamwire.PeerResult {
	start := time.Now()
	r := streamwire.PeerResult{Kind: streamwire.KindCopy, Addr: "cluster", Status: streamwire.StatusOK,
		Objects: make([]streamwire.ObjectResult, len(ids))}
	var objects errgroup.Group
	objects.SetLimit(s.cfg.SyncConcurrency)
	var down atomic.Pointer[error] // etcd did not answer: the objects not yet looked up fail alike, at once
	for i, id := range ids {
		objects.Go(func() error {
			r.Objects[i] = s.fetchOne(ctx, id, held, &down)
			return nil
		})
	}
	objects.Wait()
	r.DurationNs = int64(time.Since(start))
	for _, o := range r.Objects {
		r.Bytes += o.Bytes
		if !o.Status.Success() && r.Status == streamwire.StatusOK {
			r.Status, r.Message = o.Status, o.Message
		}
	}
	return r
}

// fetchOne fetches one object of a FETCH; down is the directory's
// unavailability, once one of the request's objects met it.
func (s *Server) fetchOne(ctx context.Context, id streamwire.ID, held *transfer.Held, down *atomic.Pointer[error]) streamwire.ObjectResult {
	if ok, err := transfer.Hold(ctx, s.st, held, id); err == nil && ok {
		return streamwire.ObjectResult{ID: id, Status: streamwire.StatusAlreadyPresent}
	}
	var holders []cluster.Location
	var err error
	if e := down.Load(); e != nil {
		err = *e
	} else if holders, err = s.cluster.dir.Holders(ctx, id); errors.Is(err, cluster.ErrUnavailable) {
		first := err
		down.CompareAndSwap(nil, &first)
	}
	if err != nil {
		st, msg := s.directoryError(err)
		return streamwire.ObjectResult{ID: id, Status: st, Message: fmt.Sprintf("object %x: %s", id[:], msg)}
	}
	rand.Shuffle(len(holders), func(i, j int) { holders[i], holders[j] = holders[j], holders[i] })
	var sources []streamwire.PullSource
	var digest *[32]byte
	for _, h := range holders {
		if h.Node == s.cfg.NodeName {
			continue // a stale location of our own
		}
		sources = append(sources, streamwire.PullSource{Node: h.Node, Addr: h.Address, Full: true})
		if d, err := hex.DecodeString(h.Digest); err == nil && len(d) == 32 && digest == nil {
			digest = (*[32]byte)(d)
		}
	}
	if len(sources) == 0 {
		return streamwire.ObjectResult{ID: id, Status: streamwire.StatusNotFound,
			Message: fmt.Sprintf("object %x: no node of the cluster holds it", id[:])}
	}
	if size := holders[0].Size; bao.OutboardSize(size) > storewire.MaxOutboard {
		return s.fetchByCopy(ctx, id, sources, held)
	}
	return s.fetchFrom(ctx, id, sources, digest, 0, 0, held).ObjectResult
}

// fetchByCopy fetches an object too large for an outboard (over 16 GiB)
// with a COPY from one holder after the other (the whole object verified
// against its digest, no resumption).
func (s *Server) fetchByCopy(ctx context.Context, id streamwire.ID, sources []streamwire.PullSource, held *transfer.Held) streamwire.ObjectResult {
	var tried []string
	var last streamwire.ObjectResult
	for _, h := range sources {
		dial := func() (*transfer.Conn, error) {
			c, _, err := transfer.Dial(ctx, h.Addr, streamwire.RolePeer, s.cfg.NodeName, s.cfg.IOTimeout)
			return c, err
		}
		res, _ := transfer.Receive(ctx, dial, s.st, streamwire.KindCopy, []streamwire.ID{id}, transfer.ReceiveOptions{Stats: &s.stats, Inflight: s.inflight, Partials: s.partials, Held: held})
		if last = res[0]; last.Status.Success() {
			return last
		}
		tried = append(tried, fmt.Sprintf("%s (%s): %s", h.Node, h.Addr, last.Status))
	}
	last.Message = fmt.Sprintf("object %x: every holder failed: %s", id[:], strings.Join(tried, "; "))
	return last
}

// handleCluster answers FETCH, NODES, LOCATE, PREFETCH, DELETE-CLUSTER and
// GROUP.
func (s *Server) handleCluster(ctx context.Context, c *transfer.Conn, t streamwire.Type, p []byte) (streamwire.Status, error) {
	reply := t | streamwire.ReplyBit
	var body any
	switch t {
	case streamwire.TypePrefetch:
		var m streamwire.Prefetch
		if err := m.Decode(p); err != nil {
			return streamwire.StatusMalformed, c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: streamwire.StatusMalformed, Message: fmt.Sprintf("malformed PREFETCH: %v", err)}.Append(nil))
		}
		// The directory is read before the reply, so that its failure
		// (or an object nobody holds) is told even without wait.
		plan, err := s.planPrefetch(ctx, m.ID, m.Group)
		var er *streamwire.ErrorReply
		if errors.As(err, &er) {
			return er.Status, c.Send(streamwire.TypeError, er.Append(nil))
		} else if err != nil {
			return s.directoryFailed(c, err, "")
		}
		if !m.Wait {
			// The swarm outlives the request: it belongs to the server
			// and ends with it.
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				out := s.spread(ctx, m.ID, plan, int(m.Fanout)) // ctx is the server's, not the request's
				s.log.Info("prefetch done", "object", fmt.Sprintf("%x", m.ID[:]), "group", m.Group, "nodes", len(out))
			}()
			body = []NodeOutcome{}
			break
		}
		body = s.spread(ctx, m.ID, plan, int(m.Fanout))
	case streamwire.TypeGroup:
		var m streamwire.Group
		if err := m.Decode(p); err != nil {
			return streamwire.StatusMalformed, c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: streamwire.StatusMalformed, Message: fmt.Sprintf("malformed GROUP: %v", err)}.Append(nil))
		}
		change := s.cluster.dir.LeaveGroup
		if m.Join {
			change = s.cluster.dir.JoinGroup
		}
		if err := change(ctx, m.Name); err != nil {
			return s.directoryFailed(c, err, "the group change is kept and written when etcd answers again")
		}
		body = s.cluster.dir.Self().Groups
	case streamwire.TypeNodes:
		if len(p) != 0 {
			return streamwire.StatusMalformed, c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: streamwire.StatusMalformed, Message: "NODES takes no payload"}.Append(nil))
		}
		nodes, err := s.cluster.dir.Nodes(ctx)
		if err != nil {
			return s.directoryFailed(c, err, "")
		}
		body = nodes
	default:
		var m streamwire.Copy
		if err := m.Decode(p); err != nil {
			return streamwire.StatusMalformed, c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: streamwire.StatusMalformed, Message: fmt.Sprintf("malformed %s: %v", t, err)}.Append(nil))
		}
		if st, msg := streamwire.ValidateIDs(m.IDs, nil); st != streamwire.StatusOK {
			return st, c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: st, Message: fmt.Sprintf("%s rejected: %s", t, msg)}.Append(nil))
		}
		if t == streamwire.TypeFetch {
			held := transfer.NewHeld(s.st)
			defer held.Release()
			r := s.fetch(ctx, m.IDs, held)
			return r.Status, c.Send(reply, r.Append(nil))
		}
		if t == streamwire.TypeDeleteAll {
			out, err := s.deleteEverywhere(ctx, m.IDs)
			if err != nil {
				return s.directoryFailed(c, err, "nothing was deleted (plasma rm without --cluster deletes here only)")
			}
			body = out
			break
		}
		locs := map[string][]cluster.Location{}
		for _, id := range m.IDs {
			l, err := s.cluster.dir.Holders(ctx, id)
			if err != nil {
				return s.directoryFailed(c, err, "")
			}
			locs[hex.EncodeToString(id[:])] = l
		}
		body = locs
	}
	b, err := json.Marshal(body)
	if err != nil {
		return streamwire.StatusInternal, err
	}
	return streamwire.StatusOK, c.Send(reply, streamwire.JSON{Body: b}.Append(nil))
}

// directoryFailed answers a request the directory failed; then says what
// became of it ("" if nothing needs saying).
func (s *Server) directoryFailed(c *transfer.Conn, err error, then string) (streamwire.Status, error) {
	st, msg := s.directoryError(err)
	if then != "" {
		msg += "; " + then
	}
	return st, c.Send(streamwire.TypeError, streamwire.ErrorReply{Status: st, Message: s.cfg.NodeName + ": " + msg}.Append(nil))
}

// directoryError is the status and sentence of a failed directory
// operation: StatusClusterUnavailable when etcd did not answer in time.
func (s *Server) directoryError(err error) (streamwire.Status, string) {
	if errors.Is(err, cluster.ErrUnavailable) {
		return streamwire.StatusClusterUnavailable, err.Error() + "; local objects are still served"
	}
	return streamwire.StatusStoreError, fmt.Sprintf("the cluster directory (etcd) failed: %v", err)
}
