package streaming

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSReaderConfig says which blocks of a JetStream stream to read.
type NATSReaderConfig struct {
	Stream string // default DefaultNATSStream
	Prefix string // subject prefix, default DefaultNATSPrefix
	Node   string // "": the one node the stream holds blocks of
}

// NATSReader reads the blocks a NATS streamer published.
type NATSReader struct {
	nc     *nats.Conn
	own    bool // nc is ours to close
	st     jetstream.Stream
	prefix string // PREFIX.NODE
}

// OpenNATS connects to the NATS servers at url (comma-separated) and
// opens the stream.
func OpenNATS(ctx context.Context, url string, cfg NATSReaderConfig) (*NATSReader, error) {
	nc, err := nats.Connect(url, nats.Timeout(natsOpTimeout))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	r, err := NewNATSReader(ctx, nc, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	r.own = true
	return r, nil
}

// NewNATSReader opens the stream over an existing connection.
func NewNATSReader(ctx context.Context, nc *nats.Conn, cfg NATSReaderConfig) (*NATSReader, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultNATSStream
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultNATSPrefix
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("JetStream stream %s: %w", cfg.Stream, err)
	}
	node := NATSToken(cfg.Node)
	if node == "" {
		commits := cfg.Prefix + ".*." + natsCommitToken
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(commits))
		if err != nil {
			return nil, err
		}
		var nodes []string
		for subj := range info.State.Subjects {
			nodes = append(nodes, strings.TrimSuffix(strings.TrimPrefix(subj, cfg.Prefix+"."), "."+natsCommitToken))
		}
		slices.Sort(nodes)
		switch len(nodes) {
		case 0:
			return nil, fmt.Errorf("%w: stream %s holds no blocks under %s", ErrNoBlocks, cfg.Stream, cfg.Prefix)
		case 1:
			node = nodes[0]
		default:
			return nil, fmt.Errorf("stream %s holds the blocks of several nodes (%s): name one with --node", cfg.Stream, strings.Join(nodes, ", "))
		}
	}
	return &NATSReader{nc: nc, st: st, prefix: cfg.Prefix + "." + node}, nil
}

// Close closes the connection OpenNATS made.
func (r *NATSReader) Close() {
	if r.own {
		r.nc.Close()
	}
}

// ReadFrom calls fn with every committed block numbered from or above, in
// order (scanning the node's messages from the stream's start); with
// follow it then waits for new blocks until ctx ends (returning nil).
func (r *NATSReader) ReadFrom(ctx context.Context, from uint64, follow bool, fn func(*ReadBlock) error) error {
	info, err := r.st.Info(ctx)
	if err != nil {
		return err
	}
	end := info.State.LastSeq // without follow, stop there
	cons, err := r.st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{r.prefix + ".>"}})
	if err != nil {
		return err
	}
	var asm natsAssembler
	asm.from = from
	for {
		if !follow {
			// Messages of other nodes may end the stream: stop once
			// nothing of ours is left before the end seen at the start.
			if left, err := r.pendingBefore(ctx, cons, end); err != nil || !left {
				return err
			}
		}
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for msg := range batch.Messages() {
			meta, err := msg.Metadata()
			if err != nil {
				return err
			}
			if !follow && meta.Sequence.Stream > end {
				return nil
			}
			rb, err := asm.add(r.prefix, msg.Subject(), msg.Headers(), msg.Data())
			if err != nil {
				return err
			}
			if rb != nil {
				if err := fn(rb); err != nil {
					return err
				}
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// pendingBefore reports whether the consumer has messages left at or
// below end.
func (r *NATSReader) pendingBefore(ctx context.Context, cons jetstream.Consumer, end uint64) (bool, error) {
	ci, err := cons.Info(ctx)
	if err != nil {
		return false, err
	}
	return ci.NumPending > 0 && ci.Delivered.Stream < end, nil
}

// natsAssembler rebuilds blocks from their messages: the data parts of a
// block, then its commit. A part published again (a retry beyond the
// duplicate window) replaces the first; a commit of a block already
// delivered is skipped.
type natsAssembler struct {
	from  uint64
	last  uint64 // the last block delivered
	block uint64
	parts [][]byte
}

func (a *natsAssembler) add(prefix, subject string, h nats.Header, data []byte) (*ReadBlock, error) {
	n, err := strconv.ParseUint(h.Get(hdrBlock), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: message on %s without a %s header", ErrCorrupt, subject, hdrBlock)
	}
	if n != a.block {
		a.block, a.parts = n, nil
	}
	if subject != prefix+"."+natsCommitToken {
		a.parts = append(a.parts, data)
		return nil, nil
	}
	parts := a.parts
	a.parts = nil
	if n <= a.last || n < a.from {
		return nil, nil
	}
	want, err := strconv.Atoi(h.Get(hdrParts))
	if err != nil || want < 0 {
		return nil, fmt.Errorf("%w: block %d: commit with %s %q", ErrCorrupt, n, hdrParts, h.Get(hdrParts))
	}
	if len(parts) < want {
		return nil, fmt.Errorf("%w: block %d: %d data messages before its commit, which says %d", ErrCorrupt, n, len(parts), want)
	}
	parts = parts[len(parts)-want:] // retried parts: the last complete set
	m, err := DecodeMeta(data)
	if err != nil {
		return nil, fmt.Errorf("block %d commit: %w", n, err)
	}
	if m.Block != n {
		return nil, fmt.Errorf("%w: the commit of block %d holds the meta of block %d", ErrCorrupt, n, m.Block)
	}
	rb := &ReadBlock{Number: n, Meta: &m}
	for _, p := range parts {
		pairs, err := DecodeData(p)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", n, err)
		}
		rb.Pairs = append(rb.Pairs, pairs...)
	}
	a.last = n
	return rb, nil
}
