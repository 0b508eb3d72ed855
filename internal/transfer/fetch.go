package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/wire"
	"github.com/plasmastream/plasmastream/store"
)

// Source is a node a fetch takes ranges from.
type Source = streamwire.PullSource

// FetchOptions tune Fetch.
type FetchOptions struct {
	Stats    *Stats
	Partials *Partials // required: where the object lives while it arrives
	// Dial opens a connection to a source's stream server.
	Dial func(ctx context.Context, addr string) (*Conn, error)
	// Digest, unless zero, is the digest the object must have (the
	// directory's); a source announcing another is treated as corrupt.
	Digest wire.Digest
	// RangeSize is the unit of work handed to one source (default 4 MiB).
	RangeSize uint64
	// Own and Slices split the groups among partial sources (see
	// streamwire.Pull); Slices 0 spreads every range over the full ones.
	Own, Slices int
	// Retries is how many times a source is re-dialled after it fails
	// without progress (default 3).
	Retries int
	// Streams is the connections to each source, each with its own spans
	// and hashing on its own goroutine. Default 3 (measured on 2 cores,
	// verified fetches ran at 1.0–1.25 GB/s with 1, 1.25–1.6 with 2 and
	// 1.3–1.8 with 3), but 1 when Slices splits the object among the
	// members of a swarm (other members are among the sources, as partial
	// ones): each member then fetches its own slice in
	// order, so it can forward every group to the others right behind
	// its download frontier. With 3, a slice arrived as three spans at
	// once that all completed at the end, leaving the others a tail to
	// fetch afterwards (plasma bench broadcast, 8 members at 1 Gbit/s:
	// broadcast_ratio 1.49–1.64 with 3, 1.14–1.22 with 1).
	Streams int
	// NoVerify skips the hashing: only for measuring what verification
	// costs (plasma bench stream's verified_ratio).
	NoVerify bool
	// Progress, if set, is told the bytes verified as they land (those an
	// earlier attempt verified first, at once).
	Progress func(bytes int64)
	// Expect, if set, is told the object's size (data and metadata) once
	// it is known (a source announced it, or an earlier attempt had).
	Expect func(bytes int64)
	// Held, if set, takes the reference to the object once it is sealed
	// (or found already here), for the caller to release when its reply is
	// sent (see Held); without, the object is released at once.
	Held *Held
}

// SourceStat is what one source contributed to a fetch.
type SourceStat = streamwire.SourceStat

// FetchResult is the outcome of a Fetch.
type FetchResult struct {
	streamwire.ObjectResult
	Resumed uint64       // bytes that were already verified here when it began
	Sources []SourceStat // one per source
}

// Fetch makes object id local by taking ranges of its 16 KiB groups from
// several sources at once, verifying every group against the object's bao
// outboard as it lands. A corrupt group is rejected at once and its source
// dropped (its ranges go to the others); a connection that breaks is
// re-dialled and continues from the first group not yet verified; the
// object is sealed only when every group has verified. If the fetch fails,
// the verified groups stay in opt.Partials for the next fetch to resume.
func Fetch(ctx context.Context, st *store.Client, id streamwire.ID, sources []Source, opt FetchOptions) (res FetchResult) {
	if opt.Stats == nil {
		opt.Stats = &Stats{}
	}
	if opt.RangeSize < bao.GroupSize {
		opt.RangeSize = 4 << 20
	}
	if opt.Retries <= 0 {
		opt.Retries = 3
	}
	if opt.Streams <= 0 {
		opt.Streams = 3
		if opt.Slices > 1 && slices.ContainsFunc(sources, func(s Source) bool { return !s.Full }) {
			opt.Streams = 1 // a swarm: see Streams
		}
	}
	if opt.Progress == nil {
		opt.Progress = func(int64) {}
	}
	f := &fetch{id: id, st: st, d: dest{st: st, partials: opt.Partials, held: opt.Held}, opt: opt, sources: sources, conns: make([]*Conn, len(sources)),
		stats: make([]SourceStat, len(sources)), dead: make([]bool, len(sources))}
	f.cond = sync.NewCond(&f.mu)
	for i, s := range sources {
		f.stats[i] = SourceStat{Node: s.Node, Address: s.Addr}
	}
	res = FetchResult{ObjectResult: streamwire.ObjectResult{ID: id}}
	ctx, endSpans := f.spans(ctx)
	defer func() { endSpans(res) }()
	defer func() {
		for _, c := range f.conns {
			if c != nil {
				c.Close()
			}
		}
		res.Sources = f.stats
	}()
	if ok, err := Hold(ctx, st, opt.Held, id); err == nil && ok {
		res.Status = streamwire.StatusAlreadyPresent
		return res
	}
	p, busy := opt.Partials.Acquire(id)
	if busy {
		res.Status, res.Message = streamwire.StatusStoreError, fmt.Sprintf("object %x: another transfer is receiving it here", id[:])
		return res
	}
	if p != nil {
		res.Resumed = p.Tree.Size()
		for _, g := range opt.Partials.Missing(p) {
			_, n := p.Tree.Span(g)
			res.Resumed -= n
		}
	} else {
		var status streamwire.Status
		if p, status = f.begin(ctx); p == nil {
			res.Status, res.Message = status, f.failure(status)
			return res
		}
	}
	f.p = p
	if opt.Expect != nil {
		opt.Expect(int64(p.Tree.Size()) + int64(len(p.Meta)))
	}
	opt.Progress(int64(res.Resumed)) // verified by an earlier attempt
	f.v = bao.NewVerifier(p.Tree, p.Buf, f.verified)
	defer f.v.Close()
	if p.Tree.Size() == 0 && p.Tree.VerifyGroup(0, nil) {
		opt.Partials.Verified(p, 0, 0) // nothing to ask anyone for
	}
	f.plan()
	var wg sync.WaitGroup
	for i := range sources {
		for range opt.Streams {
			wg.Add(1)
			go func() { defer wg.Done(); f.worker(ctx, i) }()
		}
	}
	wg.Wait()
	if len(opt.Partials.Missing(p)) > 0 {
		opt.Partials.Suspend(p, func() { st.Abort(context.Background(), id) })
		status := f.worst
		if ctx.Err() != nil {
			status = streamwire.StatusCancelled
		}
		res.Status, res.Message = status, f.failure(status)
		return res
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t := p.Tree
	if err := st.SealDigest(sctx, id, t.Root()); err != nil {
		opt.Partials.end(p, func() { st.Abort(context.Background(), id) })
		res.Status, res.Message = streamwire.StatusStoreError, fmt.Sprintf("object %x: seal: %v", id[:], err)
		return res
	}
	if t.Groups() > 1 {
		st.SetOutboard(sctx, id, t.Outboard()) // else the store hashes it again later
	}
	res.Status, res.Bytes = streamwire.StatusOK, t.Size()+uint64(len(p.Meta))
	opt.Partials.Finish(p, f.d.sealed(id, res.Bytes))
	opt.Stats.ObjectsReceived.Add(1)
	return res
}

type fetch struct {
	id      streamwire.ID
	st      *store.Client
	d       dest
	opt     FetchOptions
	sources []Source
	conns   []*Conn           // connections kept from begin, for the workers
	srcCtx  []context.Context // each source's span, whose context its RANGEs carry
	p       *Partial
	v       *bao.Verifier // checks p's groups as they land, on every core

	mu       sync.Mutex
	cond     *sync.Cond
	pending  []*span
	inflight int
	dead     []bool
	stats    []SourceStat
	arrived  []bool        // per group: some of its bytes arrived (and are being, or failed to be, verified)
	open     map[*Conn]int // the workers' connections, by source
	worst    streamwire.Status
}

// span is a run of groups [first, last] handed to one source at a time;
// owner is the partial source that should serve it, or -1 for any full one.
type span struct{ first, last, owner int }

// failure describes why the fetch failed, source by source.
func (f *fetch) failure(status streamwire.Status) string {
	var parts []string
	for _, s := range f.stats {
		if s.Failed != "" {
			parts = append(parts, fmt.Sprintf("%s (%s): %s", s.Node, s.Address, s.Failed))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("object %x: %s: no source could serve it", f.id[:], status)
	}
	return fmt.Sprintf("object %x: %s", f.id[:], strings.Join(parts, "; "))
}

// begin asks the sources in turn for the object's header and outboard,
// checks the outboard against the digest and creates the object.
func (f *fetch) begin(ctx context.Context) (*Partial, streamwire.Status) {
	f.worst = streamwire.StatusNotFound
	for i, s := range f.sources {
		c, err := f.opt.Dial(ctx, s.Addr)
		if err != nil {
			f.kill(i, ErrStatus(err), fmt.Sprintf("dial: %v", err))
			continue
		}
		r, err := f.request(c, i, streamwire.Range{ID: f.id, Header: true, Wait: !s.Full})
		if err == nil && !r.Header {
			err = &ProtocolError{Msg: "RANGE reply without the header asked for"}
		}
		var tree *bao.Tree
		if err == nil {
			if tree, err = bao.Parse(r.Outboard, r.DataSize, r.Digest); err != nil {
				err = &integrityError{fmt.Sprintf("outboard does not match the digest: %v", err)}
			} else if bao.Sum(r.Metadata) != r.MetaDigest {
				err = &integrityError{"the metadata does not match its digest"}
			} else if !f.opt.Digest.IsZero() && r.Digest != f.opt.Digest {
				err = &integrityError{fmt.Sprintf("digest %s differs from the directory's %s", r.Digest, f.opt.Digest)}
			}
		}
		if err != nil {
			c.Close()
			f.kill(i, ErrStatus(err), err.Error())
			continue
		}
		buf, err := f.d.create(ctx, f.id, r.DataSize, r.Metadata)
		if err != nil {
			c.Close()
			status, msg := f.d.status(f.id, r.DataSize+uint64(len(r.Metadata)), err)
			f.worst = status
			if status == streamwire.StatusAlreadyPresent {
				return nil, status
			}
			f.stats[i].Failed = "local store: " + msg
			return nil, status
		}
		f.conns[i] = c
		return f.opt.Partials.Add(f.id, tree, buf, r.Metadata), streamwire.StatusOK
	}
	return nil, f.worst
}

// request sends a RANGE and reads its reply; a refusal is an error.
func (f *fetch) request(c *Conn, i int, m streamwire.Range) (streamwire.RangeReply, error) {
	if err := c.Propagate(f.srcCtx[i]); err != nil {
		return streamwire.RangeReply{}, err
	}
	if err := c.Send(streamwire.TypeRange, m.Append(nil)); err != nil {
		return streamwire.RangeReply{}, err
	}
	return f.readReply(c, m.Length)
}

// readReply reads the reply to a RANGE of length bytes.
func (f *fetch) readReply(c *Conn, length uint64) (streamwire.RangeReply, error) {
	var r streamwire.RangeReply
	if err := c.Expect(streamwire.TypeRange|streamwire.ReplyBit, &r); err != nil {
		return r, err
	}
	if r.Status != streamwire.StatusOK {
		return r, &streamwire.ErrorReply{Status: r.Status, Message: r.Message}
	}
	if r.Length != length {
		return r, &ProtocolError{Msg: fmt.Sprintf("RANGE reply of %d bytes, %d asked for", r.Length, length)}
	}
	return r, nil
}

// plan cuts the missing groups into spans of at most RangeSize, within one
// slice each, and gives each slice its owner.
func (f *fetch) plan() {
	t := f.p.Tree
	groups := t.Groups()
	per := int(f.opt.RangeSize / bao.GroupSize)
	var partial []int
	for i, s := range f.sources {
		if !s.Full {
			partial = append(partial, i)
		}
	}
	sliceOf := func(g int) int {
		if f.opt.Slices <= 0 {
			return -1
		}
		return int(uint64(g) * uint64(f.opt.Slices) / uint64(groups))
	}
	owner := func(slice int) int {
		if slice < 0 || slice == f.opt.Own {
			return -1
		}
		if slice > f.opt.Own {
			slice--
		}
		if slice < len(partial) {
			return partial[slice]
		}
		return -1
	}
	f.arrived = make([]bool, t.Groups())
	f.open = map[*Conn]int{}
	var cur *span
	for _, g := range f.opt.Partials.Missing(f.p) {
		o := owner(sliceOf(g))
		if cur == nil || g != cur.last+1 || o != cur.owner || cur.last-cur.first+1 >= per {
			cur = &span{first: g, last: g, owner: o}
			f.pending = append(f.pending, cur)
			continue
		}
		cur.last = g
	}
}

func (f *fetch) eligible(i int, s *span) bool {
	if s.owner < 0 {
		return f.sources[i].Full
	}
	return s.owner == i || f.dead[s.owner] && f.sources[i].Full
}

// next hands source i its next span, waiting (if wait) while spans it
// may take are in flight elsewhere; nil when there is nothing left for it.
func (f *fetch) next(i int, wait bool) *span {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if f.dead[i] {
			return nil
		}
		for k, s := range f.pending {
			if f.eligible(i, s) {
				f.pending = append(f.pending[:k], f.pending[k+1:]...)
				f.inflight++
				return s
			}
		}
		if len(f.pending) == 0 && f.inflight == 0 {
			return nil
		}
		if !f.sources[i].Full && len(f.pending) == 0 {
			return nil // a partial source only ever serves its own spans
		}
		if !wait || !f.canProgress() {
			return nil
		}
		f.cond.Wait()
	}
}

// canProgress reports whether some live source may still take some
// pending span or finish one in flight.
func (f *fetch) canProgress() bool {
	if f.inflight > 0 {
		return true
	}
	for _, s := range f.pending {
		for i := range f.sources {
			if !f.dead[i] && f.eligible(i, s) {
				return true
			}
		}
	}
	return false
}

// settle ends source i's work on s: the groups not verified go back to
// the pending spans.
func (f *fetch) settle(s *span) {
	missing := map[int]bool{}
	for _, g := range f.opt.Partials.MissingIn(f.p, s.first, s.last) {
		missing[g] = true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inflight--
	var cur *span
	for g := s.first; g <= s.last; g++ {
		if !missing[g] {
			cur = nil
			continue
		}
		if cur == nil {
			cur = &span{first: g, last: g, owner: s.owner}
			f.pending = append([]*span{cur}, f.pending...)
		}
		cur.last = g
	}
	f.cond.Broadcast()
}

// kill drops source i for the rest of this fetch.
func (f *fetch) kill(i int, status streamwire.Status, msg string) {
	if status.Success() { // a refusal claiming success: the source breaks the protocol
		status, msg = streamwire.StatusProtocolError, fmt.Sprintf("refused with the status %q: %s", status, msg)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dead[i] = true
	f.stats[i].Failed = fmt.Sprintf("%s: %s", status, msg)
	for c, src := range f.open {
		if src == i {
			c.Close() // its other streams stop at once too
		}
	}
	if f.worst != streamwire.StatusIntegrityFailure {
		f.worst = status
	}
	f.cond.Broadcast()
}

// integrityError is data that does not match its outboard.
type integrityError struct{ msg string }

func (e *integrityError) Error() string { return e.msg }

// pipeline is how many spans a worker has asked its source for at once:
// the next request is on its way while a span's bytes arrive, so the
// source never waits for the receiver between spans.
const pipeline = 2

// worker takes spans for source i until none is left for it, re-dialling
// after a broken connection; a corrupt group or a refusal ends the source.
func (f *fetch) worker(ctx context.Context, i int) {
	src := f.sources[i]
	failures := 0
	f.mu.Lock()
	c := f.conns[i] // the connection begin used, for one of the workers
	f.conns[i] = nil
	if c != nil {
		f.open[c] = i
	}
	f.mu.Unlock()
	var asked []*span // requested on c, in order
	drop := func() {
		f.mu.Lock()
		delete(f.open, c)
		f.mu.Unlock()
		c.Close()
		c = nil
	}
	defer func() {
		if c != nil {
			drop()
		}
		for _, s := range asked {
			f.settle(s)
		}
	}()
	for {
		var err error
		for len(asked) < pipeline && err == nil {
			s := f.next(i, len(asked) == 0)
			if s == nil {
				break
			}
			asked = append(asked, s)
			if c == nil {
				if c, err = f.opt.Dial(ctx, src.Addr); err == nil {
					f.mu.Lock()
					f.open[c] = i
					f.mu.Unlock()
				}
			}
			if err == nil {
				err = f.ask(c, i, s)
			}
		}
		if len(asked) == 0 {
			return
		}
		verified := 0
		if err == nil {
			verified, err = f.receive(ctx, c, i, asked[0])
			f.settle(asked[0])
			asked = asked[1:]
		}
		if err == nil {
			failures = 0
			continue
		}
		for _, s := range asked {
			f.settle(s)
		}
		asked = nil
		if c != nil {
			drop()
		}
		var ie *integrityError
		var er *streamwire.ErrorReply
		switch {
		case ctx.Err() != nil:
			f.kill(i, streamwire.StatusCancelled, ctx.Err().Error())
			return
		case errors.As(err, &ie):
			f.opt.Stats.CorruptGroups.Add(1)
			f.opt.Stats.IntegrityFailures.Add(1)
			f.kill(i, streamwire.StatusIntegrityFailure, ie.msg)
			return
		case errors.As(err, &er):
			f.kill(i, er.Status, er.Message)
			return
		}
		if verified > 0 {
			failures = 0
		}
		if failures++; failures > f.opt.Retries {
			f.kill(i, ErrStatus(err), err.Error())
			return
		}
		select {
		case <-time.After(time.Duration(failures) * 100 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// bounds is the byte range of span s.
func (f *fetch) bounds(s *span) (off, end uint64) {
	off, _ = f.p.Tree.Span(s.first)
	lastOff, lastN := f.p.Tree.Span(s.last)
	return off, lastOff + lastN
}

// ask sends the RANGE request for span s, counting the groups of it that
// had arrived before as re-requested.
func (f *fetch) ask(c *Conn, i int, s *span) error {
	f.mu.Lock()
	for g := s.first; g <= s.last; g++ {
		if f.arrived[g] {
			_, n := f.p.Tree.Span(g)
			f.opt.Stats.BytesRerequested.Add(n)
		}
	}
	f.mu.Unlock()
	off, end := f.bounds(s)
	// Only a partial source may not have begun receiving the object yet.
	wait := !f.sources[i].Full
	if err := c.Propagate(f.srcCtx[i]); err != nil {
		return err
	}
	return c.Send(streamwire.TypeRange, streamwire.Range{ID: f.id, Offset: off, Length: end - off, Wait: wait}.Append(nil))
}

// receive reads the reply to the RANGE for span s from source i straight
// into the object and verifies each MiB as it lands, while it is still in
// the cache (a source's several streams hash on several cores). It
// returns how many groups verified; at a mismatch it stops reading.
func (f *fetch) receive(ctx context.Context, c *Conn, i int, s *span) (int, error) {
	t, buf := f.p.Tree, f.p.Buf
	off, end := f.bounds(s)
	stop := c.CloseOnDone(ctx)
	defer stop()
	if _, err := f.readReply(c, end-off); err != nil {
		return 0, err
	}
	// Bytes arrive up to pos; whole groups are verified up to vpos, a MiB
	// at a time on this goroutine while they are still in its core's
	// cache (a source's several streams hash on several cores), and at a
	// failure every whole group that arrived is verified first, so a cut
	// costs less than a group.
	const batch = 64 * bao.GroupSize
	b := f.v.Batch()
	handed := 0
	hand := func(upto uint64, vpos *uint64) {
		if upto <= *vpos {
			return
		}
		if f.opt.NoVerify {
			f.verified(int(*vpos), int(upto-*vpos))
		} else {
			b.Check(int(*vpos), int(upto-*vpos))
		}
		handed += int((upto-1)/bao.GroupSize) - int(*vpos/bao.GroupSize) + 1
		*vpos = upto
	}
	var err error
	for pos, vpos := off, off; pos < end && err == nil && b.Bad() < 0; {
		var n int
		n, err = c.ReadSome(buf[pos:min(pos+batch, end)])
		if n > 0 {
			f.arrive(i, pos, uint64(n))
			pos += uint64(n)
		}
		switch {
		case pos == end:
			hand(end, &vpos)
			err = nil // the last bytes may come with io.EOF
		case err != nil:
			hand(vpos+(pos-vpos)/bao.GroupSize*bao.GroupSize, &vpos)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
		case pos-vpos >= batch:
			hand(vpos+(pos-vpos)/bao.GroupSize*bao.GroupSize, &vpos)
		}
	}
	if g := b.Wait(); g >= 0 {
		gOff, gn := t.Span(g)
		return 0, &integrityError{fmt.Sprintf("group %d (bytes %d to %d) of object %x from %s does not match the object's BLAKE3 outboard",
			g, gOff, gOff+gn, f.id[:], f.sources[i].Node)}
	}
	return handed, err
}

// verified records the bytes [off, off+n) of the object as verified.
func (f *fetch) verified(off, n int) {
	f.opt.Partials.verifiedBytes(f.p, off, n)
	f.opt.Stats.BytesVerified.Add(uint64(n))
}

// arrive accounts for n bytes from source i at offset off: a group of
// which any byte arrived and that is asked for again is re-requested.
func (f *fetch) arrive(i int, off, n uint64) {
	f.mu.Lock()
	for g := int(off / bao.GroupSize); g <= int((off+n-1)/bao.GroupSize); g++ {
		f.arrived[g] = true
	}
	f.stats[i].Bytes += n
	f.mu.Unlock()
	f.opt.Stats.BytesReceived.Add(n)
	f.opt.Progress(int64(n))
}
