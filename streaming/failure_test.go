package streaming_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/streaming"
)

// server is a plasma-stream-server process the test watches: its stderr
// and its exit.
type server struct {
	cmd    *exec.Cmd
	exited <-chan struct{}
	stderr *testutil.Buffer
	addr   string
}

func startServer(t *testing.T, sock, name string, args ...string) *server {
	t.Helper()
	port := testutil.FreePort(t, "127.0.0.1")
	s := &server{stderr: &testutil.Buffer{}, addr: "127.0.0.1:" + strconv.Itoa(port)}
	s.cmd = exec.Command(filepath.Join(testutil.Binaries(t), "plasma-stream-server"), append([]string{"-s", sock, "-p", strconv.Itoa(port),
		"--bind", "127.0.0.1", "--node-name", name, "--log-level", "info"}, args...)...)
	s.cmd.Stderr = s.stderr
	s.exited = testutil.Run(t, s.cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, s.stderr.String())
		}
	})
	testutil.WaitTCP(t, s.addr)
	return s
}

// kill SIGKILLs the server and waits for it to end.
func (s *server) kill(t *testing.T) {
	t.Helper()
	s.cmd.Process.Kill()
	<-s.exited
}

// waitExit waits for the server to end by itself and returns its exit
// status.
func (s *server) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-s.exited:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not stop; stderr:\n%s", s.stderr.String())
		return 0
	}
}

// writer puts small objects into the store until stopped and remembers
// their ids.
type writer struct {
	mu   sync.Mutex
	ids  []store.ObjectID
	stop chan struct{}
	done chan struct{}
}

func startWriter(t *testing.T, sock string, metaSize int) *writer {
	c := testutil.StoreClient(t, sock)
	meta := strings.Repeat("m", metaSize) // big metadata: big objects infos, big block files
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			id, err := c.Put(bg, []byte(fmt.Sprintf("object %d", i)), []byte(meta))
			if err != nil {
				t.Error(err)
				return
			}
			w.mu.Lock()
			w.ids = append(w.ids, id)
			w.mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *writer) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *writer) written() []store.ObjectID {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]store.ObjectID(nil), w.ids...)
}

// highestBlockFile is the highest block number of any block file under
// its final name.
func highestBlockFile(t *testing.T, dir string) uint64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for _, e := range ents {
		if m := blockName.FindStringSubmatch(e.Name()); m != nil {
			n, _ := strconv.ParseUint(m[2], 10, 64)
			last = max(last, n)
		}
	}
	return last
}

// dirWatch watches a directory with inotify for block files written in
// place: a final block file name must appear only by a rename (IN_MOVED_TO),
// never be created, written or closed after writing under that name.
type dirWatch struct {
	f       *os.File
	done    chan struct{}
	renamed int    // final names that appeared by a rename
	inPlace string // the first final name written in place
}

func watchDir(t *testing.T, dir string) *dirWatch {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MODIFY|unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	w := &dirWatch{f: os.NewFile(uintptr(fd), "inotify"), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		buf := make([]byte, 64<<10)
		for {
			n, err := w.f.Read(buf)
			if err != nil {
				return
			}
			for b := buf[:n]; len(b) >= unix.SizeofInotifyEvent; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
				name := strings.TrimRight(string(b[unix.SizeofInotifyEvent:unix.SizeofInotifyEvent+ev.Len]), "\x00")
				b = b[unix.SizeofInotifyEvent+ev.Len:]
				if ev.Mask&unix.IN_Q_OVERFLOW != 0 && w.inPlace == "" {
					w.inPlace = "(inotify queue overflow: events lost)"
				}
				if blockName.MatchString(name) {
					if ev.Mask&unix.IN_MOVED_TO != 0 {
						w.renamed++
					} else if w.inPlace == "" {
						w.inPlace = fmt.Sprintf("%s (inotify mask %#x)", name, ev.Mask)
					}
				}
			}
		}
	}()
	return w
}

// halt stops the watch and returns the first block file written in place
// ("": none) and how many appeared by a rename.
func (w *dirWatch) halt() (string, int) {
	w.f.Close()
	<-w.done
	return w.inPlace, w.renamed
}

// SIGKILL while blocks are being written, three times: every file under
// a final name is complete, and the restarted server goes on with the
// next block number, a start block holding every object written before.
// All along, every block file appears under its name by a rename
// (inotify), never written in place, so a consumer cannot see half a file.
func TestStateFileSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	sock, _ := testutil.StartStoreProcess(t, "256MiB")
	args := []string{"--store.streamers", "file", "--store.block-interval", "5ms", "--store.block-changes", "20",
		"--streamers.file.write_dir", dir, "--streamers.file.fsync=true"}
	srv := startServer(t, sock, "k", args...)
	w := startWriter(t, sock, 32<<10)
	watch := watchDir(t, dir)
	t.Cleanup(func() { watch.halt() })
	for round := range 3 {
		// Let blocks be written, then kill at once.
		before := highestBlockFile(t, dir)
		waitFor(t, "blocks written", func() uint64 { return highestBlockFile(t, dir) }, func(n uint64) bool { return n >= before+5 })
		srv.kill(t)
		blocks := readBlockFiles(t, dir, "") // fails on any partial file
		last := highestBlockFile(t, dir)
		written := w.written()
		srv = startServer(t, sock, "k", args...)
		start := waitFor(t, "the start block after the restart", func() *fileBlock {
			for _, b := range readBlockFiles(t, dir, "") {
				if b.block > last && b.start {
					return &b
				}
			}
			return nil
		}, func(b *fileBlock) bool { return b != nil })
		if start.block != last+1 || !start.snapshot {
			t.Fatalf("round %d: after block %d (of %d committed), the restart's first block is %+v: want block %d, start, snapshot",
				round, last, len(blocks), start.meta, last+1)
		}
		have := map[string]bool{}
		for _, p := range start.pairs {
			if p.store == streaming.StoreObjects {
				have[fmt.Sprintf("%x", p.key)] = true
			}
		}
		for _, id := range written {
			if !have[hexID(id)] {
				t.Fatalf("round %d: object %s, written before the kill, is not in the start block's snapshot", round, hexID(id))
			}
		}
		for _, e := range mustReadDir(t, dir) {
			if strings.HasSuffix(e, ".tmp") {
				if m := blockName.FindStringSubmatch(strings.TrimSuffix(e[1:], ".tmp")); m != nil {
					if n, _ := strconv.ParseUint(m[2], 10, 64); n <= last {
						t.Fatalf("round %d: temporary file %s of the killed server is still there after the restart", round, e)
					}
				}
			}
		}
	}
	if inPlace, renamed := watch.halt(); inPlace != "" || renamed == 0 {
		t.Fatalf("block files written in place: %s (%d appeared by a rename)", inPlace, renamed)
	}
}

func mustReadDir(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// metric reads one sample of the server's /metrics.
func metric(t *testing.T, addr, sample string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// httpGet returns "STATUS BODY" of http://addr/path, or the error.
func httpGet(addr, path string) string {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprint(resp.StatusCode, " ", string(b))
}

// mountFull mounts a tmpfs of size bytes on dir (a disk of its own, which
// the test can fill); it needs root, as CI runs.
func mountFull(t *testing.T, dir string, size int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatalf("mount a small tmpfs on %s (the full disk of this test; it needs root): %v", dir, err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
}

// fill writes a file into dir until the disk is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return name
		}
	}
}

// The write_dir failing under a running server (a disk that fails: the
// directory removed, or the disk full), with each stop-node-on-error:
// true stops the server with a clear message and a non-zero status;
// false goes on, counts the lost block in its metrics, and its next block
// records the gap.
func TestStateWriteDirFails(t *testing.T) {
	for _, tc := range []struct {
		cause string
		setup func(t *testing.T, dir string)
		// breakDir makes writes fail; repair undoes it.
		breakDir func(t *testing.T, dir string) (repair func())
		why      string // in the server's message
	}{
		{"removed", func(*testing.T, string) {}, func(t *testing.T, dir string) func() {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}, "no such file or directory"},
		{"full", func(t *testing.T, dir string) { mountFull(t, dir, 1<<20) }, func(t *testing.T, dir string) func() {
			filler := fill(t, dir)
			return func() {
				if err := os.Remove(filler); err != nil {
					t.Fatal(err)
				}
			}
		}, "no space left on device"},
	} {
		for _, stop := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/stop-node-on-error=%v", tc.cause, stop), func(t *testing.T) {
				writeDirFails(t, tc.setup, tc.breakDir, tc.why, stop)
			})
		}
	}
}

func writeDirFails(t *testing.T, setup func(*testing.T, string), breakDir func(*testing.T, string) func(), why string, stop bool) {
	dir := filepath.Join(t.TempDir(), "state")
	setup(t, dir)
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	c := testutil.StoreClient(t, sock)
	metrics := testutil.FreeAddr(t)
	srv := startServer(t, sock, "r", "--store.streamers", "file", "--store.block-interval", "20ms",
		"--streamers.file.write_dir", dir, fmt.Sprintf("--streamers.file.stop-node-on-error=%v", stop), "--metrics-addr", metrics)
	waitFor(t, "the start block", func() int { return len(readBlockFiles(t, dir, "")) }, func(n int) bool { return n == 1 })
	repair := breakDir(t, dir)
	lostID := put(t, c, "lost", "")
	if stop {
		if code := srv.waitExit(t); code == 0 {
			t.Fatalf("exit status 0 after a block could not be written")
		}
		msg := srv.stderr.String()
		if !strings.Contains(msg, "block 2 could not be written to "+dir) || !strings.Contains(msg, why) ||
			!strings.Contains(msg, "stop-node-on-error") {
			t.Fatalf("stderr does not say why the node stopped (want %q):\n%s", why, msg)
		}
		return
	}
	waitFor(t, "the lost block counted", func() float64 {
		return metric(t, metrics, `plasma_stream_state_blocks_lost_total{streamer="file"}`)
	}, func(v float64) bool { return v >= 1 })
	if msg := srv.stderr.String(); !strings.Contains(msg, why) {
		t.Fatalf("the log does not say why the block was lost (want %q):\n%s", why, msg)
	}
	// The node is not ready while its streamer loses blocks.
	waitFor(t, "/readyz to report the lost block", func() string { return httpGet(metrics, "/readyz") }, func(s string) bool {
		return strings.HasPrefix(s, "503 ") && strings.Contains(s, "state streaming: failed: streamer file lost a block")
	})
	// The dashboard shows it too.
	waitFor(t, "the dashboard's state streaming section", func() string { return httpGet(metrics, "/api/state") }, func(s string) bool {
		return strings.Contains(s, `"name":"streaming"`) && strings.Contains(s, `"healthy":false`) && strings.Contains(s, `"last_lost":"file"`)
	})
	repair()
	id := put(t, c, "after", "")
	blocks := waitFor(t, "a block after the gap", func() []fileBlock { return readBlockFiles(t, dir, "") },
		func(bs []fileBlock) bool { return len(bs) > 0 && bs[len(bs)-1].block > 1 })
	b := blocks[slices.IndexFunc(blocks, func(b fileBlock) bool { return b.block > 1 })]
	if b.block != 3 || b.prev != 1 || len(b.pairs) != 1 || fmt.Sprintf("%x", b.pairs[0].key) != hexID(id) {
		t.Fatalf("the block after the gap: %+v (pairs %d); want block 3 with prev 1 (block 2, holding %s, lost) and %s",
			b.meta, len(b.pairs), hexID(lostID), hexID(id))
	}
	// Nothing of the lost block is left: no file of block 2, no
	// temporary file.
	for _, name := range mustReadDir(t, dir) {
		if strings.Contains(name, "block-2-") || strings.HasSuffix(name, ".tmp") {
			t.Fatalf("%s is left in %s after block 2 was lost", name, dir)
		}
	}
	select {
	case <-srv.exited:
		t.Fatalf("the server stopped with stop-node-on-error = false:\n%s", srv.stderr.String())
	default:
	}
}

// Bad streaming configuration is a clear error at start.
func TestStateConfigErrors(t *testing.T) {
	conf := func(body string) string {
		f := filepath.Join(t.TempDir(), "c.toml")
		os.WriteFile(f, []byte(body), 0o600)
		return f
	}
	sock := filepath.Join(testutil.ShortDir(t), "none.sock")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--store.streamers", "kafka"}, `unknown streamer "kafka" in store.streamers: the streamers are "file", "nats"`},
		{[]string{"--config", conf("[store]\nstreamers = [\"file\"]\n[streamers.file]\nwrite_dir = \"/tmp\"\nfsynk = true\n")}, `unknown option "streamers.file.fsynk"`},
		{[]string{"--config", conf("[streamers.kafka]\nkeys = [\"*\"]\n")}, `unknown option "streamers.kafka.keys"`},
		{[]string{"--store.streamers", "file"}, "streamers.file.write_dir is required"},
		{[]string{"--store.streamers", "file", "--streamers.file.write_dir", "/tmp", "--streamers.file.keys", "objects,blocks"}, `unknown store key "blocks"`},
		{[]string{"--store.streamers", "nats"}, "the nats streamer needs NATS"},
		{[]string{"--nats", "embedded"}, "--nats embedded needs --nats-dir"},
	} {
		out, err := testutil.RunBinary(t, "plasma-stream-server", append([]string{"-s", sock}, tt.args...)...)
		if err == nil || !strings.Contains(out, tt.want) {
			t.Errorf("%v: %v\n%s\nwant an error saying %s", tt.args, err, out, tt.want)
		}
	}
	// keys = [] turns a streamer off: the server then needs no write_dir.
	out, _ := testutil.RunBinary(t, "plasma-stream-server", "-s", sock, "--config", conf("[store]\nstreamers = [\"file\"]\n[streamers.file]\nkeys = []\n"))
	if !strings.Contains(out, "no Plasma store") {
		t.Fatalf("keys = []: the file streamer should be off (the server fails only for want of a store):\n%s", out)
	}
}

// The store restarting under a running server (empty again): the server
// reconnects and commits a snapshot block (not a start block) holding
// what the new store holds, so consumers forget the lost objects.
func TestStateStoreRestart(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(testutil.ShortDir(t), "store.sock")
	startStore := func() (*exec.Cmd, <-chan struct{}) {
		cmd := exec.Command(filepath.Join(testutil.Binaries(t), "plasma-store-server"), "-m", "16MiB", "-s", sock)
		exited := testutil.Run(t, cmd)
		testutil.WaitSocket(t, sock, exited)
		return cmd, exited
	}
	st, exited := startStore()
	startServer(t, sock, "sr", "--store.streamers", "file", "--store.block-interval", "20ms", "--streamers.file.write_dir", dir)
	lost := put(t, testutil.StoreClient(t, sock), "lost", "")
	waitFor(t, "the object's block", func() []change { cs, _ := fileChanges(t, dir, ""); return cs },
		func(cs []change) bool { return len(cs) == 1 })
	st.Process.Kill()
	<-exited
	startStore()
	kept := waitFor(t, "an object in the new store", func() store.ObjectID {
		c, err := store.Connect(bg, sock)
		if err != nil {
			return store.ObjectID{}
		}
		defer c.Close()
		id, _ := c.Put(bg, []byte("kept"), nil)
		return id
	}, func(id store.ObjectID) bool { return id != store.ObjectID{} })
	blocks := waitFor(t, "the snapshot of the new store", func() []fileBlock { return readBlockFiles(t, dir, "") }, func(bs []fileBlock) bool {
		for _, b := range bs[1:] {
			if b.snapshot {
				return true
			}
		}
		return false
	})
	for _, b := range blocks[1:] {
		if !b.snapshot {
			continue
		}
		if b.start {
			t.Fatalf("block %d after the store's restart is marked start: the server did not restart", b.block)
		}
		for _, p := range b.pairs {
			if hexID2(p.key) == hexID(lost) {
				t.Fatalf("the snapshot after the store's restart holds %s, which the store lost", hexID(lost))
			}
		}
		break
	}
	// The object put in the new store is in its snapshot or a later block.
	waitFor(t, "the new store's object", func() []change { cs, _ := fileChanges(t, dir, ""); return cs },
		func(cs []change) bool { return slices.Contains(cs, change{"objects", "set", hexID(kept)}) })
}
