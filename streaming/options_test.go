package streaming_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// dataFiles decodes, with the independent decoder, every data file of
// prefix in dir, by block number; a meta file or a file of another prefix
// fails the test.
func dataFiles(t *testing.T, dir, prefix string) map[uint64][]kv {
	t.Helper()
	out := map[uint64][]kv{}
	for _, name := range mustReadDir(t, dir) {
		m := blockName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if m[1] != prefix || m[3] != "data" {
			t.Fatalf("%s in %s: want only %s-block-N-data files", name, dir, prefix)
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		fmt.Sscan(m[2], &n)
		if out[n], err = decodeDataFile(b); err != nil {
			t.Fatalf("%s: incomplete or malformed: %v", name, err)
		}
	}
	return out
}

// readJSON is a block as plasma state read --json prints it.
type readJSON struct {
	Block    uint64 `json:"block"`
	Start    bool   `json:"start"`
	Snapshot bool   `json:"snapshot"`
	Pairs    []struct {
		Store string `json:"store"`
		Key   string `json:"key"`
	} `json:"pairs"`
}

func parseRead(t *testing.T, out string) []readJSON {
	t.Helper()
	var blocks []readJSON
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var b readJSON
		if err := json.Unmarshal([]byte(line), &b); err != nil {
			t.Fatalf("plasma state read --json printed %q: %v", line, err)
		}
		blocks = append(blocks, b)
	}
	return blocks
}

func (b readJSON) keys() []string {
	var out []string
	for _, p := range b.Pairs {
		out = append(out, p.Key)
	}
	return out
}

// output-metadata = false, a prefix, and blocks closed by their number of
// changes (store.block-changes; the interval is an hour): only data
// files, named with the prefix, each complete, two changes each; readers
// take them as the committed blocks.
func TestStateFileOptions(t *testing.T) {
	dir := t.TempDir()
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	c := testutil.StoreClient(t, sock)
	startServer(t, sock, "o", "--store.streamers", "file", "--store.block-interval", "1h", "--store.block-changes", "2",
		"--streamers.file.write_dir", dir, "--streamers.file.prefix", "node-o", "--streamers.file.output-metadata=false")
	var ids []store.ObjectID
	for i := range 4 {
		ids = append(ids, put(t, c, fmt.Sprintf("object %d", i), ""))
	}
	files := waitFor(t, "blocks 1 to 3", func() map[uint64][]kv { return dataFiles(t, dir, "node-o") },
		func(m map[uint64][]kv) bool { return len(m) >= 3 })
	keys := func(pairs []kv) []string {
		var out []string
		for _, p := range pairs {
			out = append(out, hexID2(p.key))
		}
		return out
	}
	want := map[uint64][]string{1: nil, 2: {hexID(ids[0]), hexID(ids[1])}, 3: {hexID(ids[2]), hexID(ids[3])}}
	for n, w := range want {
		if got := keys(files[n]); !slices.Equal(got, w) {
			t.Fatalf("block %d holds %v, want %v (blocks: %v)", n, got, w, files)
		}
	}
	if len(files) != 3 {
		t.Fatalf("%d blocks, want 3: %v", len(files), files)
	}
	out, err := testutil.RunBinary(t, "plasma", "state", "read", dir, "--json")
	if err != nil {
		t.Fatalf("plasma state read: %v\n%s", err, out)
	}
	blocks := parseRead(t, out)
	if len(blocks) != 3 {
		t.Fatalf("plasma state read printed %d blocks, want 3:\n%s", len(blocks), out)
	}
	for i, b := range blocks {
		if b.Block != uint64(i+1) || !slices.Equal(b.keys(), want[b.Block]) {
			t.Fatalf("plasma state read: block %d holds %v, want block %d with %v:\n%s", b.Block, b.keys(), i+1, want[uint64(i+1)], out)
		}
	}
}

// follower is `plasma state read SOURCE --follow --json` running.
type cliFollower struct {
	cmd    *exec.Cmd
	out    *testutil.Buffer
	exited <-chan struct{}
}

func startCLIFollower(t *testing.T, args ...string) *cliFollower {
	f := &cliFollower{out: &testutil.Buffer{}}
	f.cmd = exec.Command(filepath.Join(testutil.Binaries(t), "plasma"), append([]string{"state", "read"}, args...)...)
	f.cmd.Stdout = f.out
	f.cmd.Stderr = f.out
	f.exited = testutil.Run(t, f.cmd)
	return f
}

// interrupt stops the follower as a user would (Ctrl-C) and returns its
// exit status.
func (f *cliFollower) interrupt(t *testing.T) int {
	f.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-f.exited:
		return f.cmd.ProcessState.ExitCode()
	case <-time.After(10 * time.Second):
		t.Fatalf("plasma state read --follow did not stop on SIGINT:\n%s", f.out.String())
		return 0
	}
}

// plasma state read --follow --from N, of a directory and of NATS: it
// prints the blocks from N as they are committed, and stops cleanly on
// SIGINT. An idle node commits no block meanwhile.
func TestStateReadFollowCLI(t *testing.T) {
	dir, natsAddr := t.TempDir(), testutil.FreeAddr(t)
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	c := testutil.StoreClient(t, sock)
	startServer(t, sock, "fl", "--store.streamers", "file,nats", "--store.block-interval", "20ms", "--streamers.file.write_dir", dir,
		"--nats", "embedded", "--nats-dir", t.TempDir(), "--nats-listen", natsAddr)
	id1 := put(t, c, "first", "")
	waitFor(t, "blocks 1 and 2", func() uint64 { return highestBlockFile(t, dir) }, func(n uint64) bool { return n == 2 })
	// Idle: no block.
	time.Sleep(300 * time.Millisecond)
	if n := highestBlockFile(t, dir); n != 2 {
		t.Fatalf("an idle node committed block %d", n)
	}
	followers := map[string]*cliFollower{
		"DIR":     startCLIFollower(t, dir, "--follow", "--from", "2", "--json"),
		"nats://": startCLIFollower(t, "nats://"+natsAddr, "--follow", "--from", "2", "--json"),
	}
	id2 := put(t, c, "second", "")
	time.Sleep(100 * time.Millisecond)
	id3 := put(t, c, "third", "")
	for name, f := range followers {
		blocks := waitFor(t, name+" follower to print the new blocks", func() []readJSON { return parseRead(t, f.out.String()) },
			func(bs []readJSON) bool {
				var keys []string
				for _, b := range bs {
					keys = append(keys, b.keys()...)
				}
				return slices.Equal(keys, []string{hexID(id1), hexID(id2), hexID(id3)})
			})
		if blocks[0].Block != 2 {
			t.Fatalf("%s: --from 2 printed block %d first:\n%s", name, blocks[0].Block, f.out.String())
		}
		for i := 1; i < len(blocks); i++ {
			if blocks[i].Block <= blocks[i-1].Block {
				t.Fatalf("%s: block %d after block %d:\n%s", name, blocks[i].Block, blocks[i-1].Block, f.out.String())
			}
		}
		if code := f.interrupt(t); code != 0 {
			t.Fatalf("%s: exit status %d after SIGINT:\n%s", name, code, f.out.String())
		}
	}
}
