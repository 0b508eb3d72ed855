package streaming

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/plasmastream/plasmastream/internal/fsutil"
)

// Defaults of the file streamer.
const (
	DefaultFileMaxPending = 256 << 20 // bytes of blocks waiting to be written
)

// FileStreamingService writes each block to {prefix}-block-{N}-data and
// {prefix}-block-{N}-meta in write_dir (the ADR-038 byte format).
//
// Invariant: a file appears under its final name only complete. Each is
// written under a dot-prefixed temporary name, fsynced (fsync = true),
// renamed, and the directory fsynced; the meta file is renamed after the
// data file, so a meta file commits its block. Temporary files a killed
// process left are removed at start.
type FileStreamingService struct {
	dir, prefix string
	keys        []string
	meta        bool
	stopOnError bool
	fsync       bool
	env         Env
	log         *slog.Logger
	q           *blockQueue

	prev    uint64 // the last block committed (or found at start)
	started bool
	once    sync.Once
	done    chan struct{}
}

// NewFileStreamingService is the ServiceConstructor of the "file"
// streamer. It creates write_dir if needed and checks it is writable.
func NewFileStreamingService(opts AppOptions, keys []string, env Env) (StreamingService, error) {
	dir, err := stringOpt(opts, OptStreamersFileWriteDir, "")
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, fmt.Errorf("%s is required: the directory to write blocks to", OptStreamersFileWriteDir)
	}
	s := &FileStreamingService{dir: dir, keys: keys, env: env, log: env.logger().With("streamer", "file"), done: make(chan struct{})}
	if s.prefix, err = stringOpt(opts, OptStreamersFilePrefix, ""); err != nil {
		return nil, err
	}
	if strings.ContainsAny(s.prefix, "/\x00") {
		return nil, fmt.Errorf("%s %q: a file name prefix cannot hold '/'", OptStreamersFilePrefix, s.prefix)
	}
	if s.meta, err = boolOpt(opts, OptStreamersFileOutputMetadata, true); err != nil {
		return nil, err
	}
	if s.stopOnError, err = boolOpt(opts, OptStreamersFileStopNodeOnError, true); err != nil {
		return nil, err
	}
	if s.fsync, err = boolOpt(opts, OptStreamersFileFsync, true); err != nil {
		return nil, err
	}
	limit, err := intOpt(opts, OptStreamersFileMaxPending, DefaultFileMaxPending)
	if err != nil {
		return nil, err
	}
	s.q = newBlockQueue(limit)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s: %w", OptStreamersFileWriteDir, err)
	}
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return nil, fmt.Errorf("%s %s is not writable: %w", OptStreamersFileWriteDir, dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return s, nil
}

// FileName is the name of block n's file of kind "data" or "meta".
func FileName(prefix string, n uint64, kind string) string {
	name := "block-" + strconv.FormatUint(n, 10) + "-" + kind
	if prefix != "" {
		name = prefix + "-" + name
	}
	return name
}

// tempSuffix ends the temporary name of a file being written (which also
// starts with a dot, so that no pattern for block files matches it).
const tempSuffix = ".tmp"

// LastBlock removes the temporary files a killed writer left and returns
// the highest block number in the directory.
func (s *FileStreamingService) LastBlock() (uint64, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", OptStreamersFileWriteDir, err)
	}
	var last uint64
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") && strings.HasSuffix(name, tempSuffix) {
			if _, _, ok := parseName(strings.TrimSuffix(name[1:], tempSuffix), s.prefix); ok {
				os.Remove(filepath.Join(s.dir, name))
			}
			continue
		}
		if n, _, ok := parseName(name, s.prefix); ok {
			last = max(last, n)
		}
	}
	s.prev = last
	return last, nil
}

// parseName reads {prefix}-block-{N}-{kind}.
func parseName(name, prefix string) (n uint64, kind string, ok bool) {
	if prefix != "" {
		if !strings.HasPrefix(name, prefix+"-") {
			return 0, "", false
		}
		name = name[len(prefix)+1:]
	}
	rest, found := strings.CutPrefix(name, "block-")
	if !found {
		return 0, "", false
	}
	num, kind, found := strings.Cut(rest, "-")
	if !found || (kind != "data" && kind != "meta") {
		return 0, "", false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != num {
		return 0, "", false
	}
	return n, kind, true
}

// Stream starts the writer; it ends when quit is closed or Close is
// called, after writing the blocks queued.
func (s *FileStreamingService) Stream(wg *sync.WaitGroup, quit <-chan struct{}) error {
	s.started = true
	s.q.serve(wg, quit, s.done, s.run)
	return nil
}

func (s *FileStreamingService) run() {
	for {
		b := s.q.peek(nil)
		if b == nil {
			return
		}
		err := s.write(b)
		s.q.done(b)
		if err == nil {
			continue
		}
		err = fmt.Errorf("state streaming: block %d could not be written to %s: %w", b.Number, s.dir, err)
		if s.stopOnError {
			s.log.Error(err.Error() + "; stopping the node (stop-node-on-error = true)")
			if s.env.Fail != nil {
				s.env.Fail(err)
			}
			s.q.close()
			return
		}
		s.log.Error(err.Error() + "; going on (stop-node-on-error = false): the next block records the gap")
		s.lost(1)
	}
}

func (s *FileStreamingService) lost(n int) {
	if s.env.Errors != nil {
		for range n {
			s.env.Errors("file")
		}
	}
}

// ListenBlock queues b for writing.
func (s *FileStreamingService) ListenBlock(b *Block) {
	if d := s.q.push(b); d > 0 {
		s.log.Error(fmt.Sprintf("state streaming: %d blocks dropped: the writer is more than max-pending (%d bytes) behind", d, s.q.limit))
		s.lost(d)
	}
}

// write writes block b's data file, then its meta file.
func (s *FileStreamingService) write(b *Block) error {
	pairs := b.Filter(s.keys)
	data := AppendData(nil, pairs)
	if err := s.writeFile(FileName(s.prefix, b.Number, "data"), data); err != nil {
		return err
	}
	if s.meta {
		m := b.Meta(pairs, s.prev, len(data)-lengthHeader)
		if err := s.writeFile(FileName(s.prefix, b.Number, "meta"), frame(m.Append(nil))); err != nil {
			return err
		}
	}
	s.prev = b.Number
	return nil
}

// writeFile makes name appear in the directory with contents b, complete
// or not at all.
func (s *FileStreamingService) writeFile(name string, b []byte) error {
	tmp := filepath.Join(s.dir, "."+name+tempSuffix)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && s.fsync {
		err = syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if s.fsync {
		return syncDir(s.dir)
	}
	return nil
}

// syncFile and syncDir make a file's contents and a directory's entries
// durable (variables so that a test can watch when they are called).
var (
	syncFile = (*os.File).Sync
	syncDir  = fsutil.SyncDir
)

// Close writes what is queued and stops the writer.
func (s *FileStreamingService) Close() error {
	var err error
	s.once.Do(func() {
		s.q.close()
		if !s.started {
			return
		}
		<-s.done
		if n := s.q.len(); n > 0 {
			err = errors.New("state streaming: file streamer stopped with blocks unwritten")
		}
	})
	return err
}

// Backlog reports the blocks waiting to be written.
func (s *FileStreamingService) Backlog() (string, Backlog) { return "file", s.q.backlog() }
