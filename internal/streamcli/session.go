package streamcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// Client is what the CLI needs of a connection to a Plasma Stream server;
// *stream.Client is one.
type Client interface {
	Node() string
	PingStore(ctx context.Context) (time.Duration, stream.StoreState, error)
	Stat(ctx context.Context) (stream.ServerStat, error)
	List(ctx context.Context) ([]store.ObjectInfo, error)
	SyncProgress(ctx context.Context, reqs []stream.PeerRequest, progress func(stream.Progress)) (*stream.SyncResult, error)
	Close() error
}

// Dialer connects to the server at addr.
type Dialer func(ctx context.Context, addr string) (Client, error)

// DialStream connects with the stream package.
func DialStream(ctx context.Context, addr string) (Client, error) { return DialWith()(ctx, addr) }

// DialWith connects with the stream package and opts (a key, say).
func DialWith(opts ...stream.Option) Dialer {
	return func(ctx context.Context, addr string) (Client, error) {
		c, err := stream.Connect(ctx, addr, opts...)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// Session runs commands against one server and counts failures. It
// reconnects, at the next command, after a command that broke the
// connection.
type Session struct {
	Addr string
	Dial Dialer
	Out  io.Writer // summary lines
	// Progress, when not nil, shows a progress bar for a transfer that
	// lasts longer than ProgressDelay; it is cleared before the summary.
	Progress      io.Writer
	ProgressDelay time.Duration

	Failed int // commands that printed an error line

	client Client
}

// DefaultProgressDelay is how long a transfer runs before a bar appears.
const DefaultProgressDelay = 300 * time.Millisecond

// Connect opens the session's connection now (the CLI connects before
// reading any command, so that a wrong address is one error at start).
func (s *Session) Connect(ctx context.Context) error {
	if s.client != nil {
		return nil
	}
	c, err := s.Dial(ctx, s.Addr)
	if err != nil {
		return err
	}
	s.client = c
	return nil
}

// Node is the connected server's node name, or "".
func (s *Session) Node() string {
	if s.client == nil {
		return ""
	}
	return s.client.Node()
}

// Close closes the connection.
func (s *Session) Close() {
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
}

// drop forgets a connection that a failed request may have left unusable;
// the next command connects again.
func (s *Session) drop() {
	s.Close()
}

// Exec parses and runs one command line, writing its output to Out. It
// reports whether the line asked to quit.
func (s *Session) Exec(ctx context.Context, line string) (quit bool) {
	cmd, err := Parse(line)
	if err != nil {
		s.fail("%s", err)
		return false
	}
	switch cmd.Op {
	case OpNone:
		return false
	case OpHelp:
		io.WriteString(s.Out, HelpText)
		return false
	case OpQuit:
		return true
	}
	if err := s.Connect(ctx); err != nil {
		s.fail("not connected to %s: %s", s.Addr, oneLine(err.Error()))
		return false
	}
	switch cmd.Op {
	case OpPing:
		rtt, st, err := s.client.PingStore(ctx)
		if err != nil {
			s.drop()
			s.fail("%s", oneLine(err.Error()))
			return false
		}
		if !st.Up {
			s.Failed++
		}
		writePing(s.Out, s.client.Node(), rtt, st)
	case OpStat:
		st, err := s.client.Stat(ctx)
		if stream.IsStatus(err, stream.StatusStoreUnavailable) {
			s.Failed++
			writeStat(s.Out, st)
			return false
		}
		if err != nil {
			s.drop()
			s.fail("%s", oneLine(err.Error()))
			return false
		}
		writeStat(s.Out, st)
	case OpList:
		infos, err := s.client.List(ctx)
		if err != nil {
			s.drop()
			s.fail("%s", oneLine(err.Error()))
			return false
		}
		writeList(s.Out, infos)
	case OpSync:
		s.sync(ctx, cmd.Peers)
	}
	return false
}

func (s *Session) sync(ctx context.Context, reqs []stream.PeerRequest) {
	start := time.Now()
	var bar *progressBar
	var onProgress func(stream.Progress)
	if s.Progress != nil {
		bar = &progressBar{cliutil.NewProgress(s.Progress, s.ProgressDelay)}
		onProgress = bar.update
	}
	res, err := s.client.SyncProgress(ctx, reqs, onProgress)
	elapsed := time.Since(start)
	bar.clear()
	// The SYNC result (or the client's own rejection) sets Status; an
	// error without one broke off the exchange, and with it the connection.
	if err != nil && (res == nil || res.Status == stream.StatusOK) {
		s.drop()
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted; the server cancels the transfer")
		}
	}
	if !writeSync(s.Out, reqs, res, err, elapsed) {
		s.Failed++
	}
}

func (s *Session) fail(format string, args ...any) {
	s.Failed++
	fmt.Fprintf(s.Out, "error: "+format+"\n", args...)
}

// progressBar draws a bar of bytes done, with objects and throughput, once
// a transfer has run for delay. The total is what the senders announced
// so far (each object's size is known as it begins): of one large object,
// its whole size. The server reports progress four times a second; the bar
// is redrawn on each report, on the calling goroutine.
type progressBar struct{ p *cliutil.Progress }

func (b *progressBar) update(pr stream.Progress) {
	if pr.ObjectsTotal <= 0 {
		return
	}
	b.p.Update(int64(pr.Bytes), int64(pr.BytesAnnounced), fmt.Sprintf("%d/%d objects", pr.Objects, pr.ObjectsTotal))
}

func (b *progressBar) clear() {
	if b != nil {
		b.p.Done()
	}
}
