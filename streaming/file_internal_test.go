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
