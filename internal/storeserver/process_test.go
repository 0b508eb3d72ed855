package storeserver_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

func storeBin(t *testing.T) string {
	return filepath.Join(testutil.Binaries(t), "plasma-store-server")
}

// runFail runs the store expecting it to exit non-zero at once, and
// returns its stderr.
func runFail(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(storeBin(t), args...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("plasma-store-server %v succeeded; want failure", args)
	}
	msg := strings.TrimSpace(string(out))
	if msg == "" || strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine") {
		t.Fatalf("want one clear sentence, got %q", msg)
	}
	return msg
}

func TestFlagErrors(t *testing.T) {
	dir := testutil.ShortDir(t)
	sock := filepath.Join(dir, "s")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-s", sock}, "-m/--memory is required"},
		{[]string{"-s", sock, "-m", "lots"}, `size "lots"`},
		{[]string{"-s", sock, "-m", "1MiB", "-d", filepath.Join(dir, "missing")}, "create arena file"},
		{[]string{"-s", sock, "-m", "1MiB", "--log-level", "chatty"}, "log level"},
		{[]string{"-s", sock, "-m", "63"}, "holds nothing"},
		{[]string{"-s", sock, "-m", "1MiB", "--max-clients", "-1"}, "--max-clients"},
		{[]string{"-s", sock, "-m", "1MiB", "--blocked-get-memory", "0"}, "--blocked-get-memory"},
		{[]string{"-s", filepath.Join(dir, "nodir", "s"), "-m", "1MiB"}, "listen on"},
	}
	for _, tc := range cases {
		if msg := runFail(t, tc.args...); !strings.Contains(msg, tc.want) {
			t.Errorf("%v: %q does not mention %q", tc.args, msg, tc.want)
		}
	}
	if _, err := os.Stat(sock); err == nil {
		t.Error("a failed start left its socket behind")
	}
}

func TestVersionAndHelp(t *testing.T) {
	out, err := exec.Command(storeBin(t), "-V").Output()
	if err != nil || !strings.HasPrefix(string(out), "plasma-store-server ") {
		t.Fatalf("-V: %q %v", out, err)
	}
	out, err = exec.Command(storeBin(t), "-h").Output()
	for _, flag := range []string{"--memory", "--socket", "--directory", "--hugepages", "--log-level", "--version", "--max-clients", "--blocked-get-memory", "RLIMIT_NOFILE"} {
		if err != nil || !strings.Contains(string(out), flag) {
			t.Errorf("-h does not document %s", flag)
		}
	}
}

func TestMemorySizes(t *testing.T) {
	for size, want := range map[string]uint64{"3MiB": 3 << 20, "2000000": 2000000, "1M": 1000000, "10000": 10000} {
		sock, _ := testutil.StartStoreProcess(t, size)
		c, err := store.Connect(context.Background(), sock)
		if err != nil {
			t.Fatal(err)
		}
		if c.Capacity() != want {
			t.Errorf("-m %s: capacity %d, want %d", size, c.Capacity(), want)
		}
		c.Close()
	}
}

func TestRefusesLiveSocketReplacesStaleOne(t *testing.T) {
	sock, _ := testutil.StartStoreProcess(t, "1MiB")
	if msg := runFail(t, "-m", "1MiB", "-s", sock); !strings.Contains(msg, "already serving") {
		t.Fatalf("second store on a live socket: %q", msg)
	}
	// The first store is unaffected.
	if c, err := store.Connect(context.Background(), sock); err != nil {
		t.Fatalf("first store hurt by the refused second: %v", err)
	} else {
		c.Close()
	}

	// A socket file nobody listens on (a store that was SIGKILLed) is
	// replaced.
	stale := filepath.Join(testutil.ShortDir(t), "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	cmd := exec.Command(storeBin(t), "-m", "1MiB", "-s", stale)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	testutil.WaitSocket(t, stale, nil)

	// A path that is not a socket is never replaced.
	file := filepath.Join(testutil.ShortDir(t), "file")
	os.WriteFile(file, []byte("precious"), 0o644)
	if msg := runFail(t, "-m", "1MiB", "-s", file); !strings.Contains(msg, "not a socket") {
		t.Fatalf("regular file as socket: %q", msg)
	}
	if b, _ := os.ReadFile(file); string(b) != "precious" {
		t.Fatal("store overwrote a regular file")
	}
}

func TestSignalRemovesSocket(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		sock := filepath.Join(testutil.ShortDir(t), "s")
		cmd := exec.Command(storeBin(t), "-m", "1MiB", "-s", sock)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testutil.WaitSocket(t, sock, nil)
		c, err := store.Connect(context.Background(), sock) // a connected client must not block shutdown
		if err != nil {
			t.Fatal(err)
		}
		cmd.Process.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%v: exit %v", sig, err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: store did not exit", sig)
		}
		if _, err := os.Stat(sock); !os.IsNotExist(err) {
			t.Errorf("%v: socket left behind (%v)", sig, err)
		}
		if _, err := c.Contains(context.Background(), store.ObjectID{}); err == nil {
			t.Errorf("%v: client still served after shutdown", sig)
		}
		c.Close()
	}
}

// --hugepages either works (huge pages reserved) or fails at start with a
// clear message, never later with SIGBUS.
func TestHugePages(t *testing.T) {
	free := hugePagesFree(t)
	if free > 0 {
		sock, _ := testutil.StartStoreProcess(t, "2MiB", "--hugepages")
		c, err := store.Connect(context.Background(), sock)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Put(context.Background(), make([]byte, 1<<20), nil); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	tooMuch := strconv.Itoa((free+1)*2) + "MiB"
	msg := runFail(t, "-m", tooMuch, "-s", filepath.Join(testutil.ShortDir(t), "s"), "--hugepages")
	if !strings.Contains(msg, "memfd") && !strings.Contains(msg, "reserve") {
		t.Fatalf("hugepages beyond the reserved pool: %q", msg)
	}
}

func hugePagesFree(t *testing.T) int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "HugePages_Free:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(rest))
			return n
		}
	}
	return 0
}
