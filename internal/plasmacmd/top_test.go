package plasmacmd_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// plasma top on a terminal: both nodes of a cluster, a transfer under way
// at both ends with its bytes, then finished; q quits.
func TestTopOnATerminal(t *testing.T) {
	etcd := testutil.FreeAddr(t)
	a := testutil.StartNode(t, "a", "64MiB", "--etcd", "embedded", "--etcd-dir", filepath.Join(t.TempDir(), "etcd"), "--etcd-listen", etcd, "--lease-ttl", "2s")
	b := testutil.StartNode(t, "b", "64MiB", "--etcd", "http://"+etcd, "--lease-ttl", "2s")
	big := store.RandomObjectID()
	if err := testutil.StoreClient(t, b.Socket).PutID(context.Background(), big, testutil.Pattern(16<<20, 5), nil); err != nil {
		t.Fatal(err)
	}
	proxy := testutil.StartProxy(t, b.Addr, func(p *testutil.Proxy) { p.StallAt = 8 << 20 })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testutil.Binaries(t), "plasma"), "-a", a.Addr, "top", "--cluster", "--interval", "200ms")
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", "TERM=xterm")
	tty, scr, _ := testutil.StartPTY(t, cmd, 50, 200)
	// The last frame drawn (frames start by clearing the screen).
	frame := func() string {
		s := scr.String()
		return s[strings.LastIndex(s, "\x1b[2J")+1:]
	}
	waitScreen := func(what string, ok func(string) bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(frame()); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("top never showed %s; last frame:\n%s", what, frame())
			}
		}
	}
	waitScreen("both nodes", func(f string) bool {
		return strings.Contains(f, "\r\na ") && strings.Contains(f, "\r\nb ") && strings.Contains(f, "TRANSFERS UNDER WAY (0)")
	})

	done := make(chan error, 1)
	go func() {
		c, err := stream.Connect(context.Background(), a.Addr)
		if err == nil {
			_, err = c.Sync(context.Background(), []stream.PeerRequest{{Kind: stream.Copy, From: proxy.Addr, Objects: []stream.ObjectID{big}}})
			c.Close()
		}
		done <- err
	}()
	<-proxy.Stalled()
	waitScreen("the transfer under way", func(f string) bool {
		// Both ends: a receiving, b sending.
		return strings.Contains(f, "TRANSFERS UNDER WAY (2)") && strings.Contains(f, "sync COPY") && strings.Contains(f, "send COPY") &&
			strings.Contains(f, "of 16.0 MiB [####")
	})
	proxy.Resume()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitScreen("the finished transfer", func(f string) bool {
		return strings.Contains(f, "TRANSFERS UNDER WAY (0)") && strings.Contains(f, "1 objects, 16.0 MiB in") && strings.Contains(f, ", ok")
	})
	// The node rows: a holds the object now, and some frame showed a
	// receiving at a rate above zero.
	waitScreen("a's object", func(f string) bool { return regexp.MustCompile(`\r\na +127\.0\.0\.1:\d+ +1 `).MatchString(f) })
	rated := false
	for _, line := range strings.Split(scr.String(), "\r\n") {
		if rx, _, ok := strings.Cut(line, "/s"); ok && strings.HasPrefix(line, "a ") && !strings.HasSuffix(rx, " 0 B") {
			rated = true
		}
	}
	if !rated {
		t.Errorf("no frame showed a receiving at a rate above zero:\n%s", scr.String())
	}
	tty.WriteString("q")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("q: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("q did not quit plasma top")
	}
}

// Without a terminal, --frames N prints N frames and exits.
func TestTopFrames(t *testing.T) {
	a := testutil.StartNode(t, "a", "16MiB")
	c := &cli{t: t, bin: filepath.Join(testutil.Binaries(t), "plasma"), sock: a.Socket}
	out := c.ok(nil, "-a", a.Addr, "top", "--frames", "2", "--interval", "100ms")
	if strings.Count(out, "NODE ") != 2 || !strings.Contains(out, a.Addr) || strings.Contains(out, "\x1b[") {
		t.Fatalf("two plain frames expected:\n%s", out)
	}
	c.fail("--interval", "-a", a.Addr, "top", "--interval", "1ms")
}
