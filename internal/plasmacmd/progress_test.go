package plasmacmd_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// onTerminal runs plasma on a pseudo-terminal and returns what the
// terminal showed; during runs while it runs.
func onTerminal(t *testing.T, during func(), args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testutil.Binaries(t), "plasma"), args...)
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", "TERM=xterm", "PLASMA_PROGRESS_DELAY=0s")
	_, scr, shown := testutil.StartPTY(t, cmd, 40, 160)
	if during != nil {
		during()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("plasma %v: %v\n%s", args, err, scr.String())
	}
	<-shown
	return scr.String()
}

// On a terminal, put, get -o, pull and a cluster get draw a bar of bytes;
// in a pipe they stay quiet.
func TestProgressBarsOnATerminal(t *testing.T) {
	a := testutil.StartNode(t, "a", "64MiB")
	b := testutil.StartNode(t, "b", "64MiB")
	file := filepath.Join(t.TempDir(), "in")
	data := testutil.Pattern(12<<20, 3)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	scr := onTerminal(t, nil, "-s", a.Socket, "put", file)
	if !strings.Contains(scr, "reading "+file) || !strings.Contains(scr, "of 12.0 MiB") {
		t.Errorf("put on a terminal drew no bar:\n%q", scr)
	}
	lines := strings.FieldsFunc(scr, func(r rune) bool { return r == '\r' || r == '\n' })
	id, err := store.ParseObjectID(lines[len(lines)-1])
	if err != nil {
		t.Fatalf("put printed no id last: %q (%v)", scr, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if scr := onTerminal(t, nil, "-s", a.Socket, "get", "-o", out, id.String()); !strings.Contains(scr, "writing "+out) {
		t.Errorf("get -o on a terminal drew no bar:\n%q", scr)
	}

	// A pull the test holds halfway: the server reports the bytes so far.
	big := store.RandomObjectID()
	if err := testutil.StoreClient(t, b.Socket).PutID(context.Background(), big, testutil.Pattern(16<<20, 4), nil); err != nil {
		t.Fatal(err)
	}
	proxy := testutil.StartProxy(t, b.Addr, func(p *testutil.Proxy) { p.StallAt = 8 << 20 })
	scr = onTerminal(t, func() {
		select {
		case <-proxy.Stalled():
		case <-time.After(30 * time.Second):
			t.Error("the pull never reached the middle of the object")
		}
		time.Sleep(500 * time.Millisecond)
		proxy.Resume()
	}, "-s", a.Socket, "-a", a.Addr, "pull", big.String(), "--from", "b="+proxy.Addr)
	if !strings.Contains(scr, "pulling from 1 nodes") || !strings.Contains(scr, "of 16.0 MiB") {
		t.Errorf("pull on a terminal drew no bar of the object's bytes:\n%q", scr)
	}

	// The same commands in a pipe print only their results.
	c := &cli{t: t, bin: filepath.Join(testutil.Binaries(t), "plasma"), sock: a.Socket}
	stdout, stderr, ok := c.run(nil, "put", file)
	if !ok || strings.TrimSpace(stdout) != id.String() || stderr != "" {
		t.Errorf("put in a pipe: out %q err %q", stdout, stderr)
	}
}
