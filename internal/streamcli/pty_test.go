package streamcli_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
)

// waitFor waits until the terminal s shows want count times.
func waitFor(t *testing.T, s *testutil.Buffer, want string, count int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(s.String(), want) < count {
		if time.Now().After(deadline) {
			t.Fatalf("terminal never showed %q (%d times); it shows:\n%s", want, count, s.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCLITerminal runs the CLI on a pseudo-terminal: the prompt, commands,
// history in ~/.plasma_stream_history, and quit.
func TestCLITerminal(t *testing.T) {
	a, b := testutil.StartNode(t, "node-a", "16MiB"), testutil.StartNode(t, "node-b", "16MiB")
	id, err := testutil.StoreClient(t, b.Socket).Put(context.Background(), []byte("typed at a prompt"), nil)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testutil.Binaries(t), "plasma-stream-cli"), "-a", a.Addr)
	cmd.Env = append(raceEnv(), "HOME="+home, "TERM=xterm")
	tty, scr, copied := testutil.StartPTY(t, cmd, 40, 200)

	waitFor(t, scr, "plasma-stream> ", 1)
	if !strings.Contains(scr.String(), "Connected to "+a.Addr+" (node node-a)") {
		t.Errorf("no banner: %q", scr.String())
	}
	tty.WriteString("ping\r")
	waitFor(t, scr, "ok: pong from node-a in ", 1)
	waitFor(t, scr, "plasma-stream> ", 2)
	tty.WriteString("copy " + b.Addr + " " + id.String() + "\r")
	waitFor(t, scr, "ok: 1 object (1 copied, 0 already present), 17 B in ", 1)
	waitFor(t, scr, "plasma-stream> ", 3)
	tty.WriteString("bogus\r")
	waitFor(t, scr, `error: unknown command "bogus"`, 1)
	waitFor(t, scr, "plasma-stream> ", 4)
	tty.WriteString("help\r")
	waitFor(t, scr, "LIST (or LS)", 1)
	waitFor(t, scr, "plasma-stream> ", 5)
	tty.WriteString("quit\r")

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("quit: %v; terminal:\n%s", err, scr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("quit did not exit; terminal:\n%s", scr.String())
	}
	<-copied

	hist, err := os.ReadFile(filepath.Join(home, ".plasma_stream_history"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(hist); !strings.Contains(got, "ping\n") || !strings.Contains(got, "copy "+b.Addr) {
		t.Errorf("history file: %q", got)
	}
}

// On a terminal the bar of one large object held halfway across shows
// its bytes: a percentage well above 0 while "0/1 objects" are done.
func TestCLIProgressOfOneLargeObject(t *testing.T) {
	a, b := testutil.StartNode(t, "node-a", "64MiB"), testutil.StartNode(t, "node-b", "64MiB")
	id, err := testutil.StoreClient(t, b.Socket).Put(context.Background(), testutil.Pattern(24<<20, 8), nil)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testutil.StartProxy(t, b.Addr, func(p *testutil.Proxy) { p.StallAt = 18 << 20 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testutil.Binaries(t), "plasma-stream-cli"), "-a", a.Addr)
	cmd.Env = append(raceEnv(), "HOME="+t.TempDir(), "TERM=xterm")
	tty, scr, copied := testutil.StartPTY(t, cmd, 40, 200)
	waitFor(t, scr, "plasma-stream> ", 1)
	tty.WriteString("copy " + proxy.Addr + " " + id.String() + "\r")
	select {
	case <-proxy.Stalled():
	case <-time.After(30 * time.Second):
		t.Fatal("the copy never reached three quarters of the object")
	}
	// The server reports four times a second; the bar is redrawn on each.
	pct := regexp.MustCompile(`0/1 objects, [0-9.]+ MiB of 24\.0 MiB`)
	bar := regexp.MustCompile(`\s([0-9]+)% `)
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := scr.String()
		best := 0
		for _, m := range bar.FindAllStringSubmatch(s, -1) {
			n, _ := strconv.Atoi(m[1])
			best = max(best, n)
		}
		if pct.MatchString(s) && best >= 50 && best < 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no bar of the object's bytes at least half across (best %d%%); the terminal shows:\n%q", best, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	proxy.Resume()
	waitFor(t, scr, "ok: 1 object (1 copied, 0 already present), 24.0 MiB in ", 1)
	waitFor(t, scr, "plasma-stream> ", 2)
	tty.WriteString("quit\r")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("quit: %v", err)
	}
	<-copied
}
