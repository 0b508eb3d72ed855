package streaming

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ReadBlock is a block read back: its meta record (nil when the streamer
// wrote none) and its pairs.
type ReadBlock struct {
	Number uint64
	Meta   *BlockMeta
	Pairs  []StoreKVPair
}

// DirReader reads the blocks a file streamer wrote to a directory.
type DirReader struct {
	dir, prefix string
}

// ErrNoBlocks: a directory holds no block files (of the prefix).
var ErrNoBlocks = errors.New("streaming: no block files")

// OpenDir opens dir for reading the blocks of prefix; prefix "" means the
// one prefix the directory's block files have (an error if they have
// several: name one).
func OpenDir(dir, prefix string) (*DirReader, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	if prefix == "" {
		prefixes := map[string]bool{}
		for _, e := range ents {
			if p, ok := prefixOf(e.Name()); ok {
				prefixes[p] = true
			}
		}
		if len(prefixes) > 1 {
			var ps []string
			for p := range prefixes {
				ps = append(ps, fmt.Sprintf("%q", p))
			}
			slices.Sort(ps)
			return nil, fmt.Errorf("%s holds the blocks of several prefixes (%s): name one", dir, strings.Join(ps, ", "))
		}
		for p := range prefixes {
			prefix = p
		}
	}
	return &DirReader{dir: dir, prefix: prefix}, nil
}

// prefixOf returns the prefix of a block file name.
func prefixOf(name string) (string, bool) {
	i := strings.LastIndex(name, "block-")
	if i < 0 || (i > 0 && name[i-1] != '-') || strings.HasPrefix(name, ".") {
		return "", false
	}
	p := ""
	if i > 0 {
		p = name[:i-1]
	}
	_, _, ok := parseName(name, p)
	return p, ok
}

// Prefix is the prefix read.
func (r *DirReader) Prefix() string { return r.prefix }

// Blocks lists the committed blocks, ascending: those with a meta file;
// in a directory without meta files (output-metadata = false), those with
// a data file. A data file without its meta file below the highest block
// is committed too: it was written by a run with output-metadata = false
// (the setting changed between runs), or its writer was killed between
// the two renames and has moved on; only the highest block waits for its
// meta file.
func (r *DirReader) Blocks() ([]uint64, error) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, err
	}
	data, meta := map[uint64]bool{}, map[uint64]bool{}
	var top uint64
	for _, e := range ents {
		n, kind, ok := parseName(e.Name(), r.prefix)
		switch {
		case !ok:
			continue
		case kind == "meta":
			meta[n] = true
		default:
			data[n] = true
		}
		top = max(top, n)
	}
	var out []uint64
	for n := range data {
		if meta[n] || len(meta) == 0 || n < top {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Read reads block n.
func (r *DirReader) Read(n uint64) (*ReadBlock, error) {
	rb := &ReadBlock{Number: n}
	b, err := os.ReadFile(filepath.Join(r.dir, FileName(r.prefix, n, "meta")))
	switch {
	case err == nil:
		m, err := DecodeMeta(b)
		if err != nil {
			return nil, fmt.Errorf("block %d meta: %w", n, err)
		}
		rb.Meta = &m
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if b, err = os.ReadFile(filepath.Join(r.dir, FileName(r.prefix, n, "data"))); err != nil {
		return nil, err
	}
	if rb.Pairs, err = DecodeData(b); err != nil {
		return nil, fmt.Errorf("block %d data: %w", n, err)
	}
	return rb, nil
}

// FollowPoll is how often Follow looks for new blocks.
const FollowPoll = 100 * time.Millisecond

// ReadFrom calls fn with every committed block numbered from or above,
// in order; with follow it then waits for new blocks until ctx ends
// (returning nil), otherwise it returns at the last block.
func (r *DirReader) ReadFrom(ctx context.Context, from uint64, follow bool, fn func(*ReadBlock) error) error {
	next := from
	for {
		blocks, err := r.Blocks()
		if err != nil {
			return err
		}
		for _, n := range blocks {
			if n < next {
				continue
			}
			rb, err := r.Read(n)
			if err != nil {
				return err
			}
			if err := fn(rb); err != nil {
				return err
			}
			next = n + 1
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(FollowPoll):
		}
	}
}

// BlockSource is where committed blocks are read from: a directory
// (OpenDir) or a JetStream stream (OpenNATS).
type BlockSource interface {
	// ReadFrom calls fn with every block numbered from or above, in
	// order; with follow it then waits for new ones until ctx ends.
	ReadFrom(ctx context.Context, from uint64, follow bool, fn func(*ReadBlock) error) error
}
