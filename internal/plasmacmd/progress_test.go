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

// onTerminal runs plasma on a pseudo-terminal, its bars drawn without
// delay, and returns what the terminal showed; during runs while it runs.
func onTerminal(t *testing.T, during func(), args ...string) string {
	t.Helper()
	return onTerminalEnv(t, []string{"PLASMA_PROGRESS_DELAY=0s"}, during, args...)
}

// onTerminalEnv is onTerminal with env added to plasma's environment.
func onTerminalEnv(t *testing.T, env []string, during func(), args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testutil.Binaries(t), "plasma"), args...)
	cmd.Env = append(append(os.Environ(), "GORACE=atexit_sleep_ms=0", "TERM=xterm"), env...)
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

// On a terminal, put, get -o, import, export, pull and a cluster get
// draw a bar of bytes; in a pipe they stay quiet; quick work draws
// nothing on a terminal either.
func TestProgressBarsOnATerminal(t *testing.T) {
	// A two-node cluster; b advertises a proxy that throttles what it
	// sends, so that a cluster get from it lasts a few seconds.
	etcd := testutil.FreeAddr(t)
	slow := testutil.StartProxy(t, "127.0.0.1:1", func(p *testutil.Proxy) { p.Rate = 6 << 20 })
	a := testutil.StartNode(t, "a", "64MiB", "--lease-ttl", "2s", "--etcd", "embedded", "--etcd-dir", filepath.Join(t.TempDir(), "etcd"), "--etcd-listen", etcd)
	b := testutil.StartNode(t, "b", "64MiB", "--lease-ttl", "2s", "--etcd", "http://"+etcd, "--advertise", slow.Addr)
	slow.SetTarget(b.Addr)
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

	if scr := onTerminal(t, nil, "-s", a.Socket, "import", file); !strings.Contains(scr, "reading "+file) || !strings.Contains(scr, "of 12.0 MiB") {
		t.Errorf("import on a terminal drew no bar:\n%q", scr)
	}
	exported := filepath.Join(t.TempDir(), "exported")
	if scr := onTerminal(t, nil, "-s", a.Socket, "export", id.String(), exported); !strings.Contains(scr, "writing "+exported) || !strings.Contains(scr, "of 12.0 MiB") {
		t.Errorf("export on a terminal drew no bar:\n%q", scr)
	}

	// A cluster get of an object only b holds, through b's slow link.
	far := store.RandomObjectID()
	if err := testutil.StoreClient(t, b.Socket).PutID(context.Background(), far, testutil.Pattern(16<<20, 5), nil); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, bin: filepath.Join(testutil.Binaries(t), "plasma"), sock: a.Socket}
	waitLocate(t, c, a, far.String(), 1)
	fetched := filepath.Join(t.TempDir(), "fetched")
	scr = onTerminal(t, nil, "-s", a.Socket, "-a", a.Addr, "get", "-o", fetched, far.String())
	if !strings.Contains(scr, "fetching "+far.String()[:8]+" from the cluster") || !strings.Contains(scr, "of 16.0 MiB") {
		t.Errorf("a cluster get on a terminal drew no bar of the object's bytes:\n%q", scr)
	}
	if got, err := os.ReadFile(fetched); err != nil || len(got) != 16<<20 {
		t.Fatalf("cluster get -o wrote %d bytes: %v", len(got), err)
	}

	// Quick work draws nothing with the default delay.
	small := filepath.Join(t.TempDir(), "small")
	os.WriteFile(small, []byte("small"), 0o644)
	if scr := onTerminalEnv(t, nil, nil, "-s", a.Socket, "put", small); strings.Contains(scr, "reading") || strings.Contains(scr, "%") {
		t.Errorf("a quick put drew a bar:\n%q", scr)
	}

	// The same commands in a pipe print only their results (pull's
	// report of what each node sent goes to stderr).
	quiet := func(what string, args ...string) string {
		t.Helper()
		stdout, stderr, ok := c.run(nil, args...)
		if !ok {
			t.Errorf("%s in a pipe failed: %q", what, stderr)
		}
		for _, bar := range []string{"\r", "reading ", "writing ", "fetching ", "pulling from", "B/s"} {
			if strings.Contains(stderr, bar) {
				t.Errorf("%s in a pipe drew progress: stderr %q", what, stderr)
			}
		}
		if what != "pull" && stderr != "" {
			t.Errorf("%s in a pipe wrote to stderr: %q", what, stderr)
		}
		return stdout
	}
	if out := quiet("put", "put", file); strings.TrimSpace(out) != id.String() {
		t.Errorf("put in a pipe printed %q", out)
	}
	quiet("import", "import", file)
	quiet("export", "export", id.String(), filepath.Join(t.TempDir(), "e2"))
	quiet("get -o", "get", "-o", filepath.Join(t.TempDir(), "g2"), id.String())
	c.ok(nil, "-a", a.Addr, "rm", far.String()) // so that the get fetches again
	quiet("cluster get", "-a", a.Addr, "get", "-o", filepath.Join(t.TempDir(), "f2"), far.String())
	quiet("pull", "-a", a.Addr, "pull", big.String(), "--from", "b="+b.Addr)
}
