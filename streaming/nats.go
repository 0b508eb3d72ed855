package streaming

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of the NATS streamer.
const (
	DefaultNATSPrefix     = "plasma.state"
	DefaultNATSStream     = "PLASMA_STATE"
	DefaultNATSMaxPending = 256 << 20
)

// Message layout of the NATS streamer (docs/state-streaming.md):
// block N's pairs of store S go to PREFIX.NODE.S in parts of at most
// natsPartBytes, each part a data file's contents; then a commit message
// on PREFIX.NODE._commit carries the BlockMeta (framed as a meta file).
// Every message has the headers Plasma-Block (N) and Nats-Msg-Id
// (NODE/N/S/part or NODE/N/commit), so a publish retried within the
// stream's duplicate window is stored once; the commit holds
// Plasma-Parts, the number of data messages of the block.
const (
	natsCommitToken = "_commit"
	hdrBlock        = "Plasma-Block"
	hdrParts        = "Plasma-Parts"
	natsPartBytes   = 512 << 10
	natsOpTimeout   = 5 * time.Second
)

// NATSToken makes s usable as one subject token (node names may hold
// dots).
func NATSToken(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}

// NATSStreamingService publishes blocks to a JetStream stream.
//
// While NATS is unreachable it holds blocks (up to max-pending bytes,
// dropping the oldest beyond: counted lost, and the next commit's Prev
// shows the gap) and retries the oldest; once a publish fails it asks
// the stream for the last block committed before publishing again, so
// a block is never committed twice even beyond the duplicate window.
type NATSStreamingService struct {
	js          jetstream.JetStream
	nc          *nats.Conn
	stream      string
	prefix      string // PREFIX.NODE
	node        string
	keys        []string
	stopOnError bool
	env         Env
	log         *slog.Logger
	q           *blockQueue

	prev    uint64 // the last block committed
	started bool
	once    sync.Once
	stop    chan struct{} // closed by Close: give up retrying
	done    chan struct{}
}

// NewNATSStreamingService is the ServiceConstructor of the "nats"
// streamer: it needs the node's NATS connection (Env.NATS).
func NewNATSStreamingService(opts AppOptions, keys []string, env Env) (StreamingService, error) {
	if env.NATS == nil {
		return nil, errors.New("the nats streamer needs NATS: start plasma-stream-server with --nats embedded --nats-dir DIR, or --nats URL")
	}
	prefix, err := stringOpt(opts, OptStreamersNATSPrefix, DefaultNATSPrefix)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(prefix, " *>") || strings.HasPrefix(prefix, ".") || strings.HasSuffix(prefix, ".") {
		return nil, fmt.Errorf("%s %q: give a subject prefix such as %q", OptStreamersNATSPrefix, prefix, DefaultNATSPrefix)
	}
	stream, err := stringOpt(opts, OptStreamersNATSStream, DefaultNATSStream)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(stream, ". *>") {
		return nil, fmt.Errorf("%s %q: a stream name cannot hold '.', '*', '>' or spaces", OptStreamersNATSStream, stream)
	}
	s := &NATSStreamingService{nc: env.NATS, stream: stream, prefix: prefix + "." + NATSToken(env.Node), node: env.Node,
		keys: keys, env: env, log: env.logger().With("streamer", "nats"), stop: make(chan struct{}), done: make(chan struct{})}
	if s.stopOnError, err = boolOpt(opts, OptStreamersNATSStopNodeOnError, false); err != nil {
		return nil, err
	}
	limit, err := intOpt(opts, OptStreamersNATSMaxPending, DefaultNATSMaxPending)
	if err != nil {
		return nil, err
	}
	s.q = newBlockQueue(limit)
	if s.js, err = jetstream.New(env.NATS); err != nil {
		return nil, err
	}
	return s, nil
}

// ensureStream creates the stream if it is missing (subjects PREFIX.>).
func (s *NATSStreamingService) ensureStream(ctx context.Context) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, s.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		root := strings.TrimSuffix(s.prefix, "."+NATSToken(s.node))
		st, err = s.js.CreateStream(ctx, jetstream.StreamConfig{Name: s.stream, Subjects: []string{root + ".>"},
			Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = s.js.Stream(ctx, s.stream)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("JetStream stream %s: %w", s.stream, err)
	}
	return st, nil
}

// lastCommitted asks the stream for the last block this node committed.
func (s *NATSStreamingService) lastCommitted(ctx context.Context) (uint64, error) {
	st, err := s.ensureStream(ctx)
	if err != nil {
		return 0, err
	}
	m, err := st.GetLastMsgForSubject(ctx, s.prefix+"."+natsCommitToken)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(m.Header.Get(hdrBlock), 10, 64)
}

// LastBlock is the last block the stream holds of this node. With NATS
// unreachable it is an error if stop-node-on-error, else an
// ErrLastBlockUnknown: numbering then comes from the other streamers, and
// without one the node cannot start (it would number from 1 again, and
// the stream would take its blocks for ones it already holds).
func (s *NATSStreamingService) LastBlock() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), natsOpTimeout)
	defer cancel()
	n, err := s.lastCommitted(ctx)
	if err != nil {
		err = fmt.Errorf("nats streamer: the last block in stream %s: %w", s.stream, err)
		if s.stopOnError {
			return 0, err
		}
		return 0, &LastBlockUnknownError{Err: err}
	}
	s.prev = n
	return n, nil
}

// Stream starts the publisher.
func (s *NATSStreamingService) Stream(wg *sync.WaitGroup, quit <-chan struct{}) error {
	s.started = true
	s.q.serve(wg, quit, s.done, s.run)
	return nil
}

// ListenBlock queues b for publishing.
func (s *NATSStreamingService) ListenBlock(b *Block) {
	if d := s.q.push(b); d > 0 {
		s.log.Error(fmt.Sprintf("state streaming: %d blocks dropped: more than %s=%d bytes held while NATS is unreachable",
			d, OptStreamersNATSMaxPending, s.q.limit))
		if s.env.Errors != nil {
			for range d {
				s.env.Errors("nats")
			}
		}
	}
}

func (s *NATSStreamingService) run() {
	check := false // a publish failed: ask the stream what it holds first
	wait := 100 * time.Millisecond
	for {
		b := s.q.peek(nil)
		if b == nil {
			return
		}
		err := s.publishOnce(b, check)
		if err == nil {
			s.q.done(b)
			check, wait = false, 100*time.Millisecond
			continue
		}
		err = fmt.Errorf("state streaming: block %d could not be published to NATS stream %s: %w", b.Number, s.stream, err)
		if s.stopOnError {
			s.log.Error(err.Error() + "; stopping the node (stop-node-on-error = true)")
			if s.env.Fail != nil {
				s.env.Fail(err)
			}
			s.q.close()
			return
		}
		if !check {
			s.log.Warn(err.Error() + "; holding blocks until NATS is back (stop-node-on-error = false)")
		}
		check = true
		select {
		case <-s.stop:
			s.log.Error(fmt.Sprintf("state streaming: stopping with %d blocks not published to NATS", s.q.len()))
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// publishOnce publishes b, unless check finds the stream already holds
// its commit.
func (s *NATSStreamingService) publishOnce(b *Block, check bool) error {
	// While the connection is down, a publish would wait in the client's
	// reconnect buffer and might land long after this block was given up
	// (dropped beyond max-pending): fail at once instead.
	if !s.nc.IsConnected() {
		return fmt.Errorf("not connected to NATS (%s)", s.nc.Status())
	}
	ctx, cancel := context.WithTimeout(context.Background(), natsOpTimeout)
	defer cancel()
	if check {
		last, err := s.lastCommitted(ctx)
		if err != nil {
			return err
		}
		// What the stream holds is what the next commit follows.
		s.prev = max(s.prev, min(last, b.Number))
		if last >= b.Number {
			return nil
		}
	}
	return s.publish(ctx, b)
}

// publish sends b's data parts, then its commit.
func (s *NATSStreamingService) publish(ctx context.Context, b *Block) error {
	pairs := b.Filter(s.keys)
	num := strconv.FormatUint(b.Number, 10)
	idBase := NATSToken(s.node) + "/" + num + "/"
	parts, size := 0, 0
	for i := 0; i < len(pairs); {
		j := i
		for n := 0; j < len(pairs) && pairs[j].StoreKey == pairs[i].StoreKey && (j == i || n+pairs[j].Size() <= natsPartBytes); j++ {
			n += pairs[j].Size() + 10
		}
		data := AppendData(nil, pairs[i:j])
		size += len(data) - lengthHeader
		msg := nats.NewMsg(s.prefix + "." + NATSToken(pairs[i].StoreKey))
		msg.Header.Set(hdrBlock, num)
		msg.Data = data
		if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(idBase+pairs[i].StoreKey+"/"+strconv.Itoa(parts))); err != nil {
			return err
		}
		parts++
		i = j
	}
	m := b.Meta(pairs, s.prev, size)
	msg := nats.NewMsg(s.prefix + "." + natsCommitToken)
	msg.Header.Set(hdrBlock, num)
	msg.Header.Set(hdrParts, strconv.Itoa(parts))
	msg.Data = frame(m.Append(nil))
	if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(idBase+"commit")); err != nil {
		return err
	}
	s.prev = b.Number
	return nil
}

// Close publishes what is queued (giving up at once if NATS is
// unreachable) and stops the publisher.
func (s *NATSStreamingService) Close() error {
	var err error
	s.once.Do(func() {
		s.q.close()
		close(s.stop)
		if !s.started {
			return
		}
		<-s.done
		if n := s.q.len(); n > 0 {
			err = fmt.Errorf("state streaming: nats streamer stopped with %d blocks not published", n)
		}
	})
	return err
}

// Backlog reports the blocks waiting to be published.
func (s *NATSStreamingService) Backlog() (string, Backlog) { return "nats", s.q.backlog() }
