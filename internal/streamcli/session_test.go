package streamcli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// fakeClient answers like a server would, from canned results.
type fakeClient struct {
	node      string
	sync      func(reqs []stream.PeerRequest, progress func(stream.Progress)) (*stream.SyncResult, error)
	pingErr   error
	storeDown bool
	closed    bool
	requests  int
}

func (f *fakeClient) Node() string { return f.node }
func (f *fakeClient) Close() error { f.closed = true; return nil }
func (f *fakeClient) PingStore(context.Context) (time.Duration, stream.StoreState, error) {
	f.requests++
	return 123 * time.Microsecond, f.storeState(), f.pingErr
}

// storeState is up for as long as the server (3723 s), unless storeDown.
func (f *fakeClient) storeState() stream.StoreState {
	if f.storeDown {
		return stream.StoreState{Since: time.Now().Add(-12 * time.Second)}
	}
	return stream.StoreState{Up: true, Since: time.Now().Add(-3723 * time.Second)}
}
func (f *fakeClient) Stat(context.Context) (stream.ServerStat, error) {
	f.requests++
	st := stream.ServerStat{Node: f.node, Version: "1.2.3", Uptime: 3723 * time.Second, Connections: 2,
		Store: store.Stats{Capacity: 64 << 20, Used: 16 << 20, Objects: 3, Sealed: 2}, StoreState: f.storeState()}
	if f.storeDown {
		st.Store = store.Stats{}
		return st, &stream.Error{Status: stream.StatusStoreUnavailable, Msg: "store unavailable"}
	}
	return st, nil
}
func (f *fakeClient) List(context.Context) ([]store.ObjectInfo, error) {
	f.requests++
	return []store.ObjectInfo{
		{ID: idsFrom(1, 1)[0], DataSize: 1 << 20, MetadataSize: 10, State: store.StateSealed},
		{ID: idsFrom(2, 1)[0], DataSize: 5, State: store.StateCreated, DeletePending: true},
	}, nil
}
func (f *fakeClient) SyncProgress(ctx context.Context, reqs []stream.PeerRequest, progress func(stream.Progress)) (*stream.SyncResult, error) {
	f.requests++
	if f.sync != nil {
		return f.sync(reqs, progress)
	}
	return okResult(reqs, 1000), nil
}

// okResult is every object copied, each of size bytes.
func okResult(reqs []stream.PeerRequest, size uint64) *stream.SyncResult {
	res := &stream.SyncResult{Duration: time.Millisecond}
	for _, r := range reqs {
		p := stream.PeerResult{Kind: r.Kind, From: r.From}
		for _, id := range r.Objects {
			p.Objects = append(p.Objects, stream.ObjectResult{ID: id, Status: stream.StatusOK, Bytes: size, DeletedAtSource: r.Kind == stream.Take})
			p.Bytes += size
		}
		res.Bytes += p.Bytes
		res.Objects += uint64(len(r.Objects))
		res.Peers = append(res.Peers, p)
	}
	return res
}

func newTestSession(c *fakeClient, dials *int) (*Session, *bytes.Buffer) {
	var out bytes.Buffer
	s := &Session{Addr: "127.0.0.1:2021", Out: &out, Dial: func(context.Context, string) (Client, error) {
		if dials != nil {
			*dials++
		}
		c.closed = false
		return c, nil
	}}
	return s, &out
}

// lines runs each line through a session and returns the output.
func run(t *testing.T, s *Session, out *bytes.Buffer, lines ...string) string {
	t.Helper()
	out.Reset()
	for _, l := range lines {
		s.Exec(context.Background(), l)
	}
	return out.String()
}

var transferLine = regexp.MustCompile(`^ok: \d+ objects? \((\d+ copied, )?(\d+ taken, )?\d+ already present(; \d+ not deleted at the source)?\), [0-9.]+ (B|KiB|MiB|GiB|TiB) in [0-9.]+(ns|µs|ms|s|m\d+s), [0-9.]+ (B|KiB|MiB|GiB|TiB)/s\n$`)

func TestSessionOutput(t *testing.T) {
	c := &fakeClient{node: "node-a"}
	s, out := newTestSession(c, nil)
	peer := "127.0.0.1:2022"

	got := run(t, s, out, "COPY "+peer+" "+id1+" "+id2)
	if !transferLine.MatchString(got) || !strings.HasPrefix(got, "ok: 2 objects (2 copied, 0 already present), 1.95 KiB in ") {
		t.Errorf("COPY: %q", got)
	}
	got = run(t, s, out, "take "+peer+" "+id1)
	if !transferLine.MatchString(got) || !strings.HasPrefix(got, "ok: 1 object (1 taken, 0 already present), 1000 B in ") {
		t.Errorf("TAKE: %q", got)
	}
	got = run(t, s, out, "SYNC COPY "+peer+" "+id1+" ; TAKE [::1]:2023 "+id2)
	if !transferLine.MatchString(got) || !strings.HasPrefix(got, "ok: 2 objects (1 copied, 1 taken, 0 already present), ") {
		t.Errorf("SYNC: %q", got)
	}
	if got := run(t, s, out, "PING"); got != "ok: pong from node-a in 123µs, store up for 1h2m3s\n" {
		t.Errorf("PING: %q", got)
	}
	if got, want := run(t, s, out, "stat"), "ok: node node-a (version 1.2.3, up 1h2m3s, 2 connections), store up for 1h2m3s, 16.0 MiB of 64.0 MiB used (25.0%), 3 objects (2 sealed)\n"; got != want {
		t.Errorf("STAT: %q, want %q", got, want)
	}
	want := "ok: 2 objects, 1.00 MiB\n" +
		"  c11e570000000000000000000000000000000001 sealed, 1048576 B data, 10 B metadata\n" +
		"  c11e570000000000000000000000000000000002 created, 5 B data, 0 B metadata, delete pending\n"
	if got := run(t, s, out, "ls"); got != want {
		t.Errorf("LIST: %q, want %q", got, want)
	}
	if got := run(t, s, out, "help"); got != HelpText {
		t.Errorf("help: %q", got)
	}
	if got := run(t, s, out, "", "  ", "# comment"); got != "" {
		t.Errorf("blank lines printed %q", got)
	}
	if s.Failed != 0 {
		t.Errorf("%d failures counted", s.Failed)
	}
	if !s.Exec(context.Background(), "QUIT") || !s.Exec(context.Background(), "exit") {
		t.Error("quit does not quit")
	}
}

func TestSessionFailures(t *testing.T) {
	peer := "127.0.0.1:2022"
	ids := []stream.ObjectID{oid(t, id1), oid(t, id2), oid(t, id3)}
	c := &fakeClient{node: "a", sync: func(reqs []stream.PeerRequest, _ func(stream.Progress)) (*stream.SyncResult, error) {
		res := okResult(reqs, 4<<20)
		p := &res.Peers[0]
		p.Objects[1].Status, p.Objects[1].Bytes = stream.StatusAlreadyPresent, 0
		p.Objects[2] = stream.ObjectResult{ID: ids[2], Status: stream.StatusNotFound,
			Message: fmt.Sprintf("object %s from %s: not found", ids[2], peer)}
		res.Status, res.Message = stream.StatusNotFound, "1 of 1 peer requests failed (1 objects)"
		return res, &stream.Error{Status: stream.StatusNotFound, Msg: res.Message}
	}}
	s, out := newTestSession(c, nil)
	got := run(t, s, out, "COPY "+peer+" "+id1+" "+id2+" "+id3)
	want := fmt.Sprintf("error: 1 of 3 objects failed: object %s from %s: not found\n  %s not found: from %s\n", ids[2], peer, ids[2], peer)
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if s.Failed != 1 || c.closed {
		t.Errorf("failed %d, connection closed %v; want 1 and kept", s.Failed, c.closed)
	}

	// A peer that cannot be reached: every object fails with the peer's cause.
	c.sync = func(reqs []stream.PeerRequest, _ func(stream.Progress)) (*stream.SyncResult, error) {
		msg := "peer " + reqs[0].From + ": dial tcp: connection refused"
		res := &stream.SyncResult{Status: stream.StatusPeerUnreachable, Peers: []stream.PeerResult{{Kind: reqs[0].Kind, From: reqs[0].From, Status: stream.StatusPeerUnreachable, Message: msg}}}
		for _, id := range reqs[0].Objects {
			res.Peers[0].Objects = append(res.Peers[0].Objects, stream.ObjectResult{ID: id, Status: stream.StatusPeerUnreachable, Message: msg})
		}
		return res, &stream.Error{Status: res.Status, Msg: msg}
	}
	got = run(t, s, out, "TAKE "+peer+" "+id1+" "+id2)
	want = fmt.Sprintf("error: 2 of 2 objects failed: peer %[1]s: dial tcp: connection refused\n"+
		"  %[2]s peer unreachable: from %[1]s: dial tcp: connection refused\n"+
		"  %[3]s peer unreachable: from %[1]s: dial tcp: connection refused\n", peer, ids[0], ids[1])
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}

	// A rejection by the client library (its limits): its message, no
	// reconnection.
	c.sync = func(reqs []stream.PeerRequest, _ func(stream.Progress)) (*stream.SyncResult, error) {
		return &stream.SyncResult{Status: stream.StatusNoObjects, Message: "x"}, &stream.Error{Status: stream.StatusNoObjects, Msg: "SYNC rejected: peer request 1 (COPY 127.0.0.1:2022): at least one object must be requested"}
	}
	if got := run(t, s, out, "COPY "+peer); got != "error: SYNC rejected: peer request 1 (COPY 127.0.0.1:2022): at least one object must be requested\n" {
		t.Errorf("got %q", got)
	}
	if c.closed {
		t.Error("a rejected SYNC dropped the connection")
	}

	// Parse errors never reach the server.
	before := c.requests
	got = run(t, s, out, "COPY ::1:2022 "+id1, "bogus", "SYNC", "COPY "+id1)
	if n := strings.Count(got, "\n"); n != 4 || strings.Count(got, "error: ") != 4 {
		t.Errorf("parse errors: %q", got)
	}
	if c.requests != before {
		t.Errorf("parse errors sent %d requests", c.requests-before)
	}
	if s.Failed != 7 {
		t.Errorf("Failed = %d, want 7", s.Failed)
	}
}

func TestSessionReconnects(t *testing.T) {
	c := &fakeClient{node: "a"}
	dials := 0
	s, out := newTestSession(c, &dials)
	c.pingErr = errors.New("stream server 127.0.0.1:2021: read: connection reset by peer")
	if got := run(t, s, out, "ping"); got != "error: stream server 127.0.0.1:2021: read: connection reset by peer\n" {
		t.Errorf("got %q", got)
	}
	if !c.closed || dials != 1 {
		t.Fatalf("closed %v, dials %d", c.closed, dials)
	}
	c.pingErr = nil
	if got := run(t, s, out, "ping"); !strings.HasPrefix(got, "ok: pong") || dials != 2 {
		t.Errorf("after reconnecting: %q, %d dials", got, dials)
	}
	// A SYNC broken off (no result status) drops the connection too.
	c.sync = func([]stream.PeerRequest, func(stream.Progress)) (*stream.SyncResult, error) {
		return &stream.SyncResult{}, context.Canceled
	}
	if got := run(t, s, out, "COPY a:1 "+id1); got != "error: interrupted; the server cancels the transfer\n" || !c.closed {
		t.Errorf("got %q, closed %v", got, c.closed)
	}
	// A server that cannot be reached any more: one error per command.
	s.Dial = func(context.Context, string) (Client, error) { return nil, errors.New("dial tcp: connection refused") }
	if got := run(t, s, out, "stat"); got != "error: not connected to 127.0.0.1:2021: dial tcp: connection refused\n" {
		t.Errorf("got %q", got)
	}
}

// TestRunLines is the non-terminal loop on an injected reader: long lines,
// CRLF, a last line without newline, quit.
func TestRunLines(t *testing.T) {
	c := &fakeClient{node: "a"}
	var got []int
	c.sync = func(reqs []stream.PeerRequest, _ func(stream.Progress)) (*stream.SyncResult, error) {
		got = append(got, len(reqs[0].Objects))
		return okResult(reqs, 8), nil
	}
	s, _ := newTestSession(c, nil)
	big := maxCopyLine("127.0.0.1:2022", idsFrom(0, stream.MaxObjectsPerPeerRequest))
	input := "# header\n\nPING\r\n" + big + "\n" + "copy 127.0.0.1:2022 " + id1 + "\r\ncopy 127.0.0.1:2022 " + id2
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	s.Out = w
	if err := RunLines(context.Background(), s, strings.NewReader(input), w); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ok: pong") || !strings.HasPrefix(lines[1], "ok: 65536 objects (65536 copied, 0 already present), 512 KiB in ") {
		t.Errorf("output %q", out.String())
	}
	if fmt.Sprint(got) != "[65536 1 1]" {
		t.Errorf("SYNC sizes %v", got)
	}

	// quit stops reading.
	got = nil
	out.Reset()
	if err := RunLines(context.Background(), s, strings.NewReader("copy a:1 "+id1+"\nquit\ncopy a:1 "+id2+"\n"), w); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("after quit: %v, %q", got, out.String())
	}

	// A read error is reported.
	if err := RunLines(context.Background(), s, io.MultiReader(strings.NewReader("ping\n"), errReader{}), w); err == nil || !strings.Contains(err.Error(), "reading commands") {
		t.Errorf("read error: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestRunExitStatus(t *testing.T) {
	dial := func(c *fakeClient) Dialer {
		return func(context.Context, string) (Client, error) { return c, nil }
	}
	for _, tt := range []struct {
		input string
		code  int
		out   string
	}{
		{"ping\ncopy a:1 " + id1 + "\n", 0, "ok: pong from a in 123µs, store up for 1h2m3s\nok: 1 object"},
		{"ping\nbogus\nping\n", 1, "ok: pong from a in 123µs, store up for 1h2m3s\nerror: unknown command \"bogus\""},
		{"", 0, ""},
	} {
		var out, errs bytes.Buffer
		code := Run(context.Background(), Config{Addr: "x:1", In: strings.NewReader(tt.input), Out: &out, Err: &errs, Dial: dial(&fakeClient{node: "a"})})
		if code != tt.code || !strings.HasPrefix(out.String(), tt.out) || errs.Len() != 0 {
			t.Errorf("input %q: exit %d, out %q, err %q; want %d, %q", tt.input, code, out.String(), errs.String(), tt.code, tt.out)
		}
	}
	var out, errs bytes.Buffer
	code := Run(context.Background(), Config{Addr: "127.0.0.1:1", In: strings.NewReader("ping\n"), Out: &out, Err: &errs,
		Dial: func(context.Context, string) (Client, error) {
			return nil, errors.New("stream server 127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused")
		}})
	want := "plasma-stream-cli: cannot connect to the Plasma Stream server at 127.0.0.1:1 (is plasma-stream-server running there?): dial tcp 127.0.0.1:1: connect: connection refused\n"
	if code != 1 || out.Len() != 0 || errs.String() != want {
		t.Errorf("exit %d, out %q, err %q", code, out.String(), errs.String())
	}
}

func TestProgressBar(t *testing.T) {
	var bar bytes.Buffer
	c := &fakeClient{node: "a", sync: func(reqs []stream.PeerRequest, progress func(stream.Progress)) (*stream.SyncResult, error) {
		progress(stream.Progress{Bytes: 1 << 20, Objects: 1, ObjectsTotal: 4}) // before the delay: nothing
		if bar.Len() != 0 {
			t.Errorf("bar drawn before the delay: %q", bar.String())
		}
		time.Sleep(30 * time.Millisecond)
		progress(stream.Progress{Bytes: 3 << 20, Objects: 2, ObjectsTotal: 4})
		progress(stream.Progress{Bytes: 4 << 20, Objects: 4, ObjectsTotal: 4})
		return okResult(reqs, 1<<20), nil
	}}
	s, out := newTestSession(c, nil)
	s.Progress, s.ProgressDelay = &bar, 20*time.Millisecond
	got := run(t, s, out, "COPY a:1 "+strings.Join([]string{id1, id2, id3, "c102030405060708090a0b0c0d0e0f1011121314"}, " "))
	if !strings.HasPrefix(got, "ok: 4 objects") {
		t.Errorf("summary %q", got)
	}
	drawn := bar.String()
	if !strings.Contains(drawn, "3.00 MiB") || !strings.Contains(drawn, "2/4") {
		t.Errorf("bar %q", drawn)
	}
	// Cleared: the last thing written returns to the start of a blank line.
	if !strings.HasSuffix(drawn, "\r") {
		t.Errorf("bar not cleared: %q", drawn)
	}
}

// The bar measures bytes: one large object 90% across shows 90%, not
// "0% (0/1)".
func TestProgressBarMeasuresBytes(t *testing.T) {
	var bar bytes.Buffer
	c := &fakeClient{node: "a", sync: func(reqs []stream.PeerRequest, progress func(stream.Progress)) (*stream.SyncResult, error) {
		time.Sleep(30 * time.Millisecond)
		progress(stream.Progress{Bytes: 10 << 20, BytesAnnounced: 100 << 20, Objects: 0, ObjectsTotal: 1})
		progress(stream.Progress{Bytes: 90 << 20, BytesAnnounced: 100 << 20, Objects: 0, ObjectsTotal: 1})
		return okResult(reqs, 100<<20), nil
	}}
	s, out := newTestSession(c, nil)
	s.Progress, s.ProgressDelay = &bar, 20*time.Millisecond
	run(t, s, out, "COPY a:1 "+id1)
	if drawn := bar.String(); !strings.Contains(drawn, " 90% ") || !strings.Contains(drawn, "0/1 objects") {
		t.Errorf("bar %q, want 90%% of the bytes", drawn)
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		n    float64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.00 KiB"}, {12 << 20, "12.0 MiB"}, {292 << 20, "292 MiB"}, {1.5 * (1 << 30), "1.50 GiB"}} {
		if got := formatBytes(tt.n); got != tt.want {
			t.Errorf("formatBytes(%v) = %q, want %q", tt.n, got, tt.want)
		}
	}
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{0, "0s"}, {999, "999ns"}, {123456, "123µs"}, {41234567, "41.2ms"}, {1234567890, "1.23s"}, {75 * time.Second, "1m15s"}} {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := formatRate(292<<20, time.Second); got != "292 MiB/s" {
		t.Errorf("formatRate = %q", got)
	}
	if got := formatRate(0, 0); got != "0 B/s" {
		t.Errorf("formatRate(0) = %q", got)
	}
}

func TestNormalizeAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:2021": "127.0.0.1:2021", "10.0.0.5": "10.0.0.5:2021", "host": "host:2021",
		"::1": "[::1]:2021", "[::1]": "[::1]:2021", "[::1]:7": "[::1]:7", "a:b:c": "a:b:c",
	} {
		if got := NormalizeAddr(in); got != want {
			t.Errorf("NormalizeAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCompleter(t *testing.T) {
	for _, tt := range []struct {
		line string
		want []string
	}{
		{"", []string{"COPY ", "TAKE ", "SYNC ", "PING ", "STAT ", "LIST ", "HELP ", "QUIT "}},
		{"co", []string{"py "}},
		{"CO", []string{"PY "}},
		{"s", []string{"ync ", "tat "}},
		{"sync ", []string{"COPY ", "TAKE "}},
		{"SYNC COPY a:1 " + id1 + " ; t", []string{"ake "}},
		{"COPY ", nil},
	} {
		cands, _ := completer{}.Do([]rune(tt.line), len([]rune(tt.line)))
		var got []string
		for _, c := range cands {
			got = append(got, string(c))
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("complete %q = %q, want %q", tt.line, got, tt.want)
		}
	}
}

// A server whose store is down answers PING and STAT: the CLI says the
// store is unavailable and since when, counts a failure, and keeps the
// connection (the server itself is fine).
func TestSessionStoreDown(t *testing.T) {
	c := &fakeClient{node: "node-a", storeDown: true}
	dials := 0
	s, out := newTestSession(c, &dials)
	down := regexp.MustCompile(`its store is unavailable since \S+ \(for 12s\); the server is reconnecting\n$`)
	if got := run(t, s, out, "ping"); !strings.HasPrefix(got, "error: pong from node-a in 123µs, but ") || !down.MatchString(got) {
		t.Errorf("PING: %q", got)
	}
	if got := run(t, s, out, "stat"); !strings.HasPrefix(got, "error: node node-a (version 1.2.3, up 1h2m3s, 2 connections), but ") || !down.MatchString(got) {
		t.Errorf("STAT: %q", got)
	}
	if s.Failed != 2 || dials != 1 {
		t.Errorf("failed %d, dials %d: want 2 failures on one connection", s.Failed, dials)
	}
}
