package testutil

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/store"
)

// ShortDir returns a fresh temporary directory with a short path (unix
// socket paths are limited to 107 bytes), removed at the end of the test.
func ShortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ps")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// StartStore runs a store in this process on a temporary socket and stops
// it at the end of the test. The arena is a memfd.
func StartStore(t testing.TB, capacity uint64) (string, *storeserver.Server) {
	t.Helper()
	s := StartStoreConfig(t, storeserver.Config{Capacity: capacity})
	return s.Socket, s.Server
}

// Store is a store running in this process.
type Store struct {
	Socket string
	Server *storeserver.Server
	stop   func()
}

// Stop stops the store (closing its clients' connections and removing its
// socket) and waits until it has; the end of the test does it otherwise.
func (s *Store) Stop() { s.stop() }

// StartStoreConfig runs a store in this process with cfg, its Socket a
// temporary one, until Stop or the end of the test.
func StartStoreConfig(t testing.TB, cfg storeserver.Config) *Store {
	t.Helper()
	cfg.Socket = filepath.Join(ShortDir(t), "store.sock")
	srv, err := storeserver.New(cfg)
	if err != nil {
		t.Fatalf("start store: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("store: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &Store{Socket: cfg.Socket, Server: srv, stop: stop}
}

// StoreClient connects to the store at sock; the client is closed at the
// end of the test.
func StoreClient(t testing.TB, sock string) *store.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := store.Connect(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Pattern is n bytes of test data, different for every seed.
func Pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13) ^ seed
	}
	return b
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
	buildOut  []byte
)

// Binaries builds every command of the module once per test binary and
// returns the directory holding them.
func Binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		binDir, buildErr = os.MkdirTemp("", "psbin")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", binDir + "/", "./cmd/..."}
		if raceEnabled {
			args = []string{"build", "-race", "-o", binDir + "/", "./cmd/..."}
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build binaries: %v\n%s", buildErr, buildOut)
	}
	return binDir
}

// StartStoreProcess runs the real plasma-store-server binary with extra
// arguments on a temporary socket and stops it (SIGINT) at the end.
func StartStoreProcess(t testing.TB, memory string, args ...string) (string, *exec.Cmd) {
	t.Helper()
	sock := filepath.Join(ShortDir(t), "store.sock")
	cmd, exited := startProc(t, "store", "plasma-store-server", append([]string{"-m", memory, "-s", sock}, args...))
	WaitSocket(t, sock, exited)
	return sock, cmd
}

// startProc runs one of the module's binaries until the end of the test
// (then SIGINT, SIGKILL after 10 s), its stderr in the test log. exited is
// closed when the process ends.
func startProc(t testing.TB, logName, bin string, args []string) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(filepath.Join(Binaries(t), bin), args...)
	cmd.Stderr = &prefixWriter{t: t, prefix: logName + ": "}
	return cmd, Run(t, cmd)
}

// Run starts cmd (with the environment of this process) and stops it at
// the end of the test: SIGINT, then SIGKILL after 10 s. The channel is
// closed when the process has ended.
func Run(t testing.TB, cmd *exec.Cmd) <-chan struct{} {
	t.Helper()
	// Race-built binaries otherwise pause a second at exit.
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	return exited
}

// WaitSocket waits until something accepts connections on sock.
func WaitSocket(t testing.TB, sock string, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("process serving %s exited before listening", sock)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("nothing listening on %s after 20s", sock)
}

type prefixWriter struct {
	t      testing.TB
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s%s", w.prefix, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// WantError fails t unless err is nil when want is "", or an error whose
// message contains want otherwise.
func WantError(t testing.TB, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}
