package streaming

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/fsutil"
)

// The fsync option: with fsync = true every block file is fsynced under
// its temporary name, before it appears under its final name (the data
// file, then the meta file), and the directory is fsynced after each
// rename; with fsync = false neither is, and the files are the same.
func TestFileStreamerFsyncOption(t *testing.T) {
	defer func(f func(*os.File) error, d func(string) error) { syncFile, syncDir = f, d }(syncFile, syncDir)
	for _, fsync := range []bool{true, false} {
		dir := t.TempDir()
		var mu sync.Mutex
		var synced []string // final names of the files fsynced, in order
		dirSyncs := 0
		syncFile = func(f *os.File) error {
			name := filepath.Base(f.Name())
			final, ok := strings.CutSuffix(strings.TrimPrefix(name, "."), tempSuffix)
			if !ok || !strings.HasPrefix(name, ".") {
				t.Errorf("fsync of %s: not a temporary name", name)
			}
			if _, err := os.Stat(filepath.Join(dir, final)); err == nil {
				t.Errorf("%s is visible before it is fsynced", final)
			}
			if data, ok := strings.CutSuffix(final, "-meta"); ok {
				if _, err := os.Stat(filepath.Join(dir, data+"-data")); err != nil {
					t.Errorf("the meta file %s is written before its block's data file: %v", final, err)
				}
			}
			mu.Lock()
			synced = append(synced, final)
			mu.Unlock()
			return f.Sync()
		}
		syncDir = func(d string) error {
			if d != dir {
				t.Errorf("fsync of directory %s, want %s", d, dir)
			}
			mu.Lock()
			dirSyncs++
			mu.Unlock()
			return fsutil.SyncDir(d)
		}
		svc, err := NewFileStreamingService(Options{OptStreamersFileWriteDir: dir, OptStreamersFileFsync: fsync}, nil, Env{Node: "n"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewCommitter(CommitterConfig{Node: "n", Interval: time.Hour, Services: []StreamingService{svc}})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		quit := make(chan struct{})
		if err := svc.Stream(&wg, quit); err != nil {
			t.Fatal(err)
		}
		c.Snapshot(nil)
		for _, k := range []string{"a", "b"} {
			c.Set(StoreTransfers, []byte(k), []byte("v"))
			c.Flush()
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		close(quit)
		wg.Wait()
		var files []string
		for n := uint64(1); n <= 3; n++ {
			files = append(files, FileName("", n, "data"), FileName("", n, "meta"))
		}
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Fatalf("fsync=%v: %v", fsync, err)
			}
		}
		wantSynced, wantDirSyncs := files, len(files)
		if !fsync {
			wantSynced, wantDirSyncs = nil, 0
		}
		if !slices.Equal(synced, wantSynced) || dirSyncs != wantDirSyncs {
			t.Fatalf("fsync=%v: files fsynced %v, directory fsynced %d times; want %v and %d", fsync, synced, dirSyncs, wantSynced, wantDirSyncs)
		}
	}
}

// blockSink is a StreamingService that keeps the blocks it is given.
type blockSink struct {
	mu     sync.Mutex
	blocks []*Block
}

func (s *blockSink) Stream(*sync.WaitGroup, <-chan struct{}) error { return nil }
func (s *blockSink) LastBlock() (uint64, error)                    { return 0, nil }
func (s *blockSink) Close() error                                  { return nil }
func (s *blockSink) ListenBlock(b *Block) {
	s.mu.Lock()
	s.blocks = append(s.blocks, b)
	s.mu.Unlock()
}

func (s *blockSink) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, b := range s.blocks {
		out = append(out, len(b.Pairs))
	}
	return out
}

// A block closes when it holds store.block-changes changes, even when
// more arrive at once: a burst of 5 with block-changes 2 makes blocks of
// 2 and 2, and the fifth waits (for more changes, the interval, or a
// flush).
func TestCommitterBlockChanges(t *testing.T) {
	sink := &blockSink{}
	c, err := NewCommitter(CommitterConfig{Node: "n", Interval: time.Hour, Changes: 2, Services: []StreamingService{sink}})
	if err != nil {
		t.Fatal(err)
	}
	c.Snapshot(nil)
	for k := range 5 {
		c.Set(StoreTransfers, []byte{byte(k)}, []byte("v"))
	}
	var wg sync.WaitGroup
	quit := make(chan struct{})
	c.Run(&wg, quit) // the burst is pending: Run finds the kick
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(sink.sizes(), []int{0, 2, 2}) {
		if time.Now().After(deadline) {
			t.Fatalf("blocks of %v changes, want 0 (the start), 2, 2", sink.sizes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if got := sink.sizes(); !slices.Equal(got, []int{0, 2, 2}) {
		t.Fatalf("blocks of %v changes: the fifth change did not wait", got)
	}
	c.Flush()
	if got := sink.sizes(); !slices.Equal(got, []int{0, 2, 2, 1}) {
		t.Fatalf("after Flush, blocks of %v changes, want 0 2 2 1", got)
	}
	close(quit)
	wg.Wait()
}
