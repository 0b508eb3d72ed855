package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/internal/wire"
	"github.com/plasmastream/plasmastream/store"
)

// The fetch fuzz harness plays one source against Fetch. Its input is
// what the source sends back on its connections, after the HELLO exchange
// (which the harness's Dial skips, as FuzzReceive does):
//
//   - the input is cut at every fetchConnSep, and the k-th connection
//     Fetch dials gets the k-th piece; once the pieces are used up, Dial
//     fails (connection refused);
//   - at the end of its piece the source hangs up (Fetch reads EOF), or,
//     if the piece ends with fetchStall, falls silent (Fetch's reads wait
//     for their deadline);
//   - "<data OFF LEN>" (decimal) in a piece stands for LEN bytes of the
//     real object's data from OFF (if they are in it; else it is sent as
//     it is). The bytes are raw otherwise: a corrupt group is literal
//     bytes, or a reference to the wrong ones. The references keep inputs
//     a few hundred bytes long, so that mutations hit frames and lengths
//     rather than 40 KiB of data, and the fuzzer can minimise them;
//   - whatever Fetch writes is taken at once and recorded.
//
// The connections are in memory (sourceConn), not net.Pipe: a source on a
// net.Pipe cannot hang up once Fetch has read its bytes without racing
// Fetch's next request (FuzzReceive sleeps 10 ms for that), so every input
// cut short cost a whole read deadline, and -fuzz spent its time
// minimising at a few runs a second. Here a run is deterministic, and
// takes no time but Fetch's own 100 ms pause before re-dialling and the
// 10 ms read deadline of a stalled source.
//
// The fetch is of fetchObject with Streams 1 (one connection at a time to
// the one source: the k-th piece always meets the same requests), Retries
// 1, RangeSize 32 KiB (the 40 KiB object's 3 groups make the spans
// [0,1] and [2,2], both asked for at once on one connection), Partials
// that keep nothing (a failed fetch aborts at once) and the directory's
// digest, so that whatever the bytes, an object that ends sealed can only
// be the real one.
const (
	fetchConnSep     = "<next connection>"
	fetchStall       = "<stall>"
	fetchDataRef     = "<data "
	fetchRangeSize   = 32 << 10
	fetchConnTimeout = 10 * time.Millisecond
	fetchDeadline    = 10 * time.Second // the context of one Fetch
	fetchMaxExpand   = 1 << 20          // data references expanded per piece, at most
)

var fetchID = streamwire.ID{9, 9}

// fetchObject is the source's real object: 40 KiB of data (3 groups, the
// last one short) and metadata.
func fetchObject() (data, meta, outboard []byte, digest [32]byte) {
	data = make([]byte, 40<<10)
	rand.NewChaCha8([32]byte{'f', 'e', 't', 'c', 'h'}).Read(data)
	outboard, digest = bao.Build(data)
	return data, []byte("fetched metadata"), outboard, digest
}

// rangeReplyFrame is a RANGE reply frame followed by the raw bytes it
// announces.
func rangeReplyFrame(b []byte, r streamwire.RangeReply, raw []byte) []byte {
	b = streamwire.AppendFrame(b, streamwire.TypeRange|streamwire.ReplyBit, r.Append(nil))
	return append(b, raw...)
}

// headerReply answers RANGE{Header: true, Length: 0} as a correct source
// does (serveSealed).
func headerReply(b []byte) []byte {
	data, meta, outboard, digest := fetchObject()
	return rangeReplyFrame(b, streamwire.RangeReply{Status: streamwire.StatusOK, Header: true,
		DataSize: uint64(len(data)), Digest: digest, Metadata: meta, MetaDigest: bao.Sum(meta), Outboard: outboard}, nil)
}

// dataRef is a reference to data[off:off+n] in an input.
func dataRef(b []byte, off, n int) []byte { return fmt.Appendf(b, "%s%d %d>", fetchDataRef, off, n) }

// dataReply answers RANGE{Offset: off, Length: n} with the real bytes.
func dataReply(b []byte, off, n int) []byte {
	return dataRef(rangeReplyFrame(b, streamwire.RangeReply{Status: streamwire.StatusOK, Length: uint64(n)}, nil), off, n)
}

// validFetchReply is what a correct source sends for the requests Fetch
// makes on its first connection: the header, then the spans [0,1] and
// [2,2], pipelined.
func validFetchReply() []byte {
	b := headerReply(nil)
	b = dataReply(b, 0, 32<<10)
	return dataReply(b, 32<<10, 8<<10)
}

// resumeFetchReply is a first connection that hangs up 1000 bytes into
// group 1, then a second one answering what Fetch asks again: group 0
// verified before the cut, so the spans [2,2] and [1,1] (the unfinished
// spans go back to the front of the queue, the later one first).
func resumeFetchReply() []byte {
	b := headerReply(nil)
	b = rangeReplyFrame(b, streamwire.RangeReply{Status: streamwire.StatusOK, Length: 32 << 10}, nil)
	b = dataRef(b, 0, (16<<10)+1000)
	b = append(b, fetchConnSep...)
	b = dataReply(b, 32<<10, 8<<10)
	return dataReply(b, 16<<10, 16<<10)
}

// redialFetchReply is a first connection that falls silent after the
// header, then a second one answering the spans asked again: [2,2] and
// [0,1].
func redialFetchReply() []byte {
	b := headerReply(nil)
	b = append(b, fetchStall+fetchConnSep...)
	b = dataReply(b, 32<<10, 8<<10)
	return dataReply(b, 0, 32<<10)
}

// corruptFetchReply is validFetchReply with one byte of group 1 flipped.
func corruptFetchReply() []byte {
	data, _, _, _ := fetchObject()
	const at = 20000
	b := headerReply(nil)
	b = rangeReplyFrame(b, streamwire.RangeReply{Status: streamwire.StatusOK, Length: 32 << 10}, nil)
	b = dataRef(b, 0, at)
	b = append(b, data[at]^1)
	b = dataRef(b, at+1, (32<<10)-at-1)
	return dataReply(b, 32<<10, 8<<10)
}

// expandPiece replaces the data references in piece with the bytes they
// name.
func expandPiece(piece, data []byte) []byte {
	var out []byte
	budget := fetchMaxExpand
	for {
		i := bytes.Index(piece, []byte(fetchDataRef))
		if i < 0 {
			return append(out, piece...)
		}
		out = append(out, piece[:i+len(fetchDataRef)]...)
		piece = piece[i+len(fetchDataRef):]
		end := bytes.IndexByte(piece[:min(len(piece), 24)], '>')
		if end < 0 {
			continue
		}
		f := strings.Fields(string(piece[:end]))
		if len(f) != 2 {
			continue
		}
		off, err1 := strconv.ParseUint(f[0], 10, 32)
		n, err2 := strconv.ParseUint(f[1], 10, 32)
		if err1 != nil || err2 != nil || off > uint64(len(data)) || n > uint64(len(data))-off || int(n) > budget {
			continue
		}
		budget -= int(n)
		out = append(out[:len(out)-len(fetchDataRef)], data[off:off+n]...)
		piece = piece[end+1:]
	}
}

// The requests the valid seeds answer, connection by connection.
var (
	validFetchRequests = [][]streamwire.Range{{
		{ID: fetchID, Header: true},
		{ID: fetchID, Offset: 0, Length: 32 << 10},
		{ID: fetchID, Offset: 32 << 10, Length: 8 << 10},
	}}
	resumeFetchRequests = [][]streamwire.Range{{
		{ID: fetchID, Header: true},
		{ID: fetchID, Offset: 0, Length: 32 << 10},
		{ID: fetchID, Offset: 32 << 10, Length: 8 << 10},
	}, {
		{ID: fetchID, Offset: 32 << 10, Length: 8 << 10},
		{ID: fetchID, Offset: 16 << 10, Length: 16 << 10},
	}}
	redialFetchRequests = [][]streamwire.Range{{
		{ID: fetchID, Header: true},
		{ID: fetchID, Offset: 0, Length: 32 << 10},
		{ID: fetchID, Offset: 32 << 10, Length: 8 << 10},
	}, {
		{ID: fetchID, Offset: 32 << 10, Length: 8 << 10},
		{ID: fetchID, Offset: 0, Length: 32 << 10},
	}}
)

// fakeSource serves the pieces of one fuzz input, a connection each.
type fakeSource struct {
	pieces [][]byte
	data   []byte // the real object's, for the data references

	mu       sync.Mutex
	conns    []*sourceConn
	requests [][]streamwire.Range // what Fetch sent, by connection
	junk     []string             // frames Fetch sent that are no RANGE
}

var errNoMoreConns = errors.New("fuzz source: connection refused (no piece of the input left)")

func (s *fakeSource) dial(ctx context.Context, addr string) (*Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := len(s.conns)
	if k >= len(s.pieces) {
		return nil, errNoMoreConns
	}
	in, stall := bytes.CutSuffix(s.pieces[k], []byte(fetchStall))
	c := &sourceConn{src: s, k: k, in: expandPiece(in, s.data), stall: stall, closed: make(chan struct{})}
	s.conns = append(s.conns, c)
	s.requests = append(s.requests, nil)
	return NewConn(c, fetchConnTimeout), nil
}

// open lists the connections not closed.
func (s *fakeSource) open() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var open []int
	for k, c := range s.conns {
		select {
		case <-c.closed:
		default:
			open = append(open, k)
		}
	}
	return open
}

// sourceConn is the k-th connection to a fakeSource, Fetch's end of it.
type sourceConn struct {
	src   *fakeSource
	k     int
	stall bool // at the end of in: fall silent instead of hanging up

	mu        sync.Mutex
	in        []byte // what the source has still to send
	out       []byte // what Fetch wrote, short of a whole frame
	deadline  time.Time
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *sourceConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	select {
	case <-c.closed:
		c.mu.Unlock()
		return 0, net.ErrClosed
	default:
	}
	if len(c.in) > 0 {
		n := copy(b, c.in)
		c.in = c.in[n:]
		c.mu.Unlock()
		return n, nil
	}
	deadline := c.deadline
	c.mu.Unlock()
	if !c.stall {
		return 0, io.EOF
	}
	var expired <-chan time.Time
	if !deadline.IsZero() { // else only Close ends the wait
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	case <-expired:
		return 0, os.ErrDeadlineExceeded
	}
}

// Write takes everything at once, recording the frames.
func (c *sourceConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.out = append(c.out, b...)
	for len(c.out) >= wire.HeaderSize {
		h, err := wire.ParseHeader(c.out, streamwire.MaxControlFrame)
		if err != nil {
			c.src.note(c.k, nil, err.Error())
			c.out = nil
			break
		}
		end := wire.HeaderSize + int(h.Length)
		if len(c.out) < end {
			break
		}
		var m streamwire.Range
		if err := m.Decode(c.out[wire.HeaderSize:end]); streamwire.Type(h.Type) != streamwire.TypeRange || err != nil {
			c.src.note(c.k, nil, fmt.Sprintf("%s frame (%v)", streamwire.Type(h.Type), err))
		} else {
			c.src.note(c.k, &m, "")
		}
		c.out = c.out[end:]
	}
	return len(b), nil
}

func (s *fakeSource) note(k int, m *streamwire.Range, junk string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m != nil {
		s.requests[k] = append(s.requests[k], *m)
	} else {
		s.junk = append(s.junk, junk)
	}
}

func (c *sourceConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *sourceConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *sourceConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

// SetWriteDeadline does nothing: writes never wait.
func (c *sourceConn) SetWriteDeadline(time.Time) error { return nil }

func (c *sourceConn) LocalAddr() net.Addr  { return &net.UnixAddr{Name: "fetch", Net: "memory"} }
func (c *sourceConn) RemoteAddr() net.Addr { return &net.UnixAddr{Name: "fuzz-source", Net: "memory"} }

// fetchHarness is a store with nothing in it but what one fetch leaves.
type fetchHarness struct {
	st *store.Client
}

func newFetchHarness(t testing.TB) *fetchHarness {
	sock, _ := testutil.StartStore(t, 8<<20)
	st, err := store.Connect(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fetchHarness{st: st}
}

// run fetches fetchObject from a source sending input, checks what Fetch
// left behind, and empties the store again.
func (h *fetchHarness) run(t testing.TB, input []byte) (FetchResult, *fakeSource) {
	data, meta, _, digest := fetchObject()
	src := &fakeSource{pieces: bytes.Split(input, []byte(fetchConnSep)), data: data}
	partials := NewPartials(0, 0)
	ctx, cancel := context.WithTimeout(context.Background(), fetchDeadline)
	defer cancel()
	done := make(chan FetchResult, 1)
	go func() {
		done <- Fetch(ctx, h.st, fetchID, []Source{{Node: "fuzz", Addr: "fuzz:1", Full: true}}, FetchOptions{
			Partials: partials, Dial: src.dial, Digest: digest,
			RangeSize: fetchRangeSize, Streams: 1, Retries: 1,
		})
	}()
	var res FetchResult
	select {
	case res = <-done:
	case <-time.After(fetchDeadline + 10*time.Second):
		t.Fatalf("Fetch did not return %v after its context ended", 10*time.Second)
	}
	if ctx.Err() != nil {
		// Every read has a deadline and the retries are bounded: against a
		// source that stops sending Fetch must give up by itself.
		t.Fatalf("Fetch ran until its %v context ended (%s: %s)", fetchDeadline, res.Status, res.Message)
	}
	if open := src.open(); len(open) > 0 {
		t.Fatalf("Fetch returned (%s) leaving connections %v of %d to the source open", res.Status, open, len(src.conns))
	}

	bg := context.Background()
	if p, busy := partials.Acquire(fetchID); p != nil || busy {
		t.Fatalf("Fetch returned (%s) leaving the object in Partials (busy %v) though they keep nothing", res.Status, busy)
	}
	infos, err := h.st.List(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.State != store.StateSealed {
			t.Fatalf("Fetch returned (%s) leaving object %s %s", res.Status, in.ID, in.State)
		}
		if in.RefCount != 0 {
			t.Fatalf("Fetch returned (%s) holding %d references to object %s", res.Status, in.RefCount, in.ID)
		}
	}
	o, err := h.st.GetOne(bg, fetchID, 0)
	switch {
	case err == nil:
		gotData, gotMeta := bytes.Clone(o.Data), bytes.Clone(o.Metadata)
		h.st.Release(bg, fetchID)
		if errs, err := h.st.Delete(bg, fetchID); err != nil || errs[0] != nil {
			t.Fatalf("delete the fetched object: %v %v", err, errs)
		}
		if !bytes.Equal(gotData, data) {
			t.Fatalf("Fetch sealed %d bytes of data other than the source's %d (status %s)", len(gotData), len(data), res.Status)
		}
		if !res.Status.Success() {
			t.Fatalf("Fetch sealed the object but returned %s: %s", res.Status, res.Message)
		}
		// The header carries the metadata's BLAKE3 digest: metadata that
		// does not match it is rejected (a mutation cannot forge both).
		if !bytes.Equal(gotMeta, meta) {
			t.Fatalf("Fetch sealed metadata %q, not the source's %q", gotMeta, meta)
		}
	case !errors.Is(err, store.ErrObjectNotFound):
		t.Fatal(err)
	case res.Status.Success():
		t.Fatalf("Fetch returned %s (%q) but the object is not in the store", res.Status, res.Message)
	}
	return res, src
}

// TestFetchValidSeed proves the harness: a correct source's replies (on
// one connection, with the data raw or as references; hung up then resumed
// on a second; silent then re-dialled) answer exactly the requests Fetch
// makes, and the object ends sealed with the source's bytes.
func TestFetchValidSeed(t *testing.T) {
	h := newFetchHarness(t)
	data, meta, _, _ := fetchObject()
	for _, tc := range []struct {
		name     string
		input    []byte
		requests [][]streamwire.Range
	}{
		{"one connection", validFetchReply(), validFetchRequests},
		{"one connection, raw data", expandPiece(validFetchReply(), data), validFetchRequests},
		{"resumed", resumeFetchReply(), resumeFetchRequests},
		{"re-dialled", redialFetchReply(), redialFetchRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, src := h.run(t, tc.input)
			if res.Status != streamwire.StatusOK {
				t.Fatalf("status %s: %s", res.Status, res.Message)
			}
			if res.Bytes != uint64(len(data)+len(meta)) {
				t.Errorf("%d bytes, want %d", res.Bytes, len(data)+len(meta))
			}
			if len(src.junk) > 0 {
				t.Errorf("Fetch sent frames other than RANGE: %v", src.junk)
			}
			if len(src.conns) != len(tc.requests) {
				t.Errorf("%d connections, want %d", len(src.conns), len(tc.requests))
			}
			if !slices.EqualFunc(src.requests, tc.requests, slices.Equal) {
				t.Errorf("requests %+v, the seed answers %+v", src.requests, tc.requests)
			}
		})
	}
}

// FuzzFetch plays an arbitrary source against Fetch (the comment at the
// top of this file says what the input is): whatever the bytes, Fetch
// returns by itself, closes every connection, and leaves either nothing or
// the source's real object sealed, with a status that says which (a
// success status only with the object there); never an unsealed object, a
// partial one or a reference.
//
// Run it with -parallel 1, like FuzzReceive. The inputs that take Fetch
// through a re-dial cost its 100 ms pause each, so the default 60 s of
// minimising a new interesting input can take a short -fuzztime whole:
// -fuzzminimizetime 5s keeps the fuzzer fuzzing.
func FuzzFetch(f *testing.F) {
	h := newFetchHarness(f)
	valid := validFetchReply()
	f.Add(valid)
	f.Add(resumeFetchReply())
	f.Add(redialFetchReply())
	f.Add(corruptFetchReply())
	f.Add(bytes.TrimSuffix(valid, []byte("8192>"))) // a hang-up 12 bytes into group 2
	f.Add(append(headerReply(nil), fetchStall...))
	f.Add(rangeReplyFrame(headerReply(nil), streamwire.RangeReply{Status: streamwire.StatusNotFound, Message: "gone"}, nil))
	f.Add(streamwire.AppendFrame(headerReply(nil), streamwire.TypeError, streamwire.ErrorReply{Status: streamwire.StatusServerBusy, Message: "busy"}.Append(nil)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, input []byte) {
		h.run(t, input)
	})
}
