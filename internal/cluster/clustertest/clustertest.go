package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/etcdembed"
	"github.com/plasmastream/plasmastream/internal/testutil"
)

// LogBuffer is a slog logger whose output is printed by t.Log only if the
// test failed (background goroutines may log after the test ends, so it
// never calls t.Log while the test runs).
func LogBuffer(t testing.TB) *slog.Logger {
	b := &testutil.Buffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("PLASMA_TEST_LOGS") != "" {
			t.Logf("log:\n%s", b.String())
		}
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Embedded is an embedded etcd member for a test.
type Embedded struct {
	Dir       string
	ClientURL string
	PeerURL   string
	Logger    *slog.Logger

	mu     sync.Mutex
	member *etcdembed.Member
}

// StartEmbedded starts an embedded member on free ports in a temporary
// directory; t.Cleanup stops it (register the cleanups of its clients
// after this call so that they run first: open keep-alive streams delay
// the member's shutdown).
func StartEmbedded(t testing.TB) *Embedded {
	t.Helper()
	e := &Embedded{
		Dir:       filepath.Join(t.TempDir(), "etcd"),
		ClientURL: "http://" + testutil.FreeAddr(t),
		PeerURL:   "http://" + testutil.FreeAddr(t),
		Logger:    LogBuffer(t),
	}
	e.Start(t)
	t.Cleanup(e.Stop)
	return e
}

// Endpoints are the client URLs.
func (e *Embedded) Endpoints() []string { return []string{e.ClientURL} }

// Start starts the member again (same directory and ports) after Stop.
func (e *Embedded) Start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var m *etcdembed.Member
	var err error
	// The ports were free a moment ago; retry briefly if one is still in
	// TIME_WAIT-ish trouble after a Stop.
	for i := 0; i < 20; i++ {
		m, err = etcdembed.Start(ctx, etcdembed.Config{Dir: e.Dir, ClientURL: e.ClientURL, PeerURL: e.PeerURL, Name: "test", Logger: e.Logger})
		if err == nil || !strings.Contains(err.Error(), "in use") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("embedded etcd: %v", err)
	}
	e.mu.Lock()
	e.member = m
	e.mu.Unlock()
}

// Stop stops the member (no-op if stopped).
func (e *Embedded) Stop() {
	e.mu.Lock()
	m := e.member
	e.member = nil
	e.mu.Unlock()
	if m != nil {
		m.Close()
	}
}

// ExternalMember is one etcd process of an ExternalCluster.
type ExternalMember struct {
	Name      string
	ClientURL string
	PeerURL   string
	Dir       string

	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *testutil.Buffer
}

// ExternalCluster is a multi-member etcd cluster of etcd processes.
type ExternalCluster struct {
	Members []*ExternalMember
}

// EtcdBinary is the etcd binary: $PLASMA_ETCD_BIN, else etcd in $PATH, else
// "" (tests then fail, saying how to install it).
func EtcdBinary() string {
	if b := os.Getenv("PLASMA_ETCD_BIN"); b != "" {
		return b
	}
	b, _ := exec.LookPath("etcd")
	return b
}

// StartExternalCluster runs an n-member etcd cluster of the etcd binary and
// returns its client URLs. It fails the test when there is no etcd binary
// (apt-get install etcd-server).
func StartExternalCluster(t testing.TB, n int) []string {
	t.Helper()
	return StartExternal(t, n).Endpoints()
}

// StartExternal is StartExternalCluster giving control of the members.
func StartExternal(t testing.TB, n int) *ExternalCluster {
	t.Helper()
	bin := EtcdBinary()
	if bin == "" {
		// A missing binary fails the test: scripts/test.sh installs it, and
		// a test that skips would pass without testing anything.
		t.Fatal("no etcd binary: apt-get install etcd-server (scripts/test.sh does), or set PLASMA_ETCD_BIN")
	}
	root := t.TempDir()
	c := &ExternalCluster{}
	var initial []string
	for i := 0; i < n; i++ {
		m := &ExternalMember{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: "http://" + testutil.FreeAddr(t),
			PeerURL:   "http://" + testutil.FreeAddr(t),
			Dir:       filepath.Join(root, fmt.Sprintf("m%d", i)),
			log:       &testutil.Buffer{},
		}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	t.Cleanup(func() {
		for _, m := range c.Members {
			m.stop(syscall.SIGTERM)
		}
		if t.Failed() {
			for _, m := range c.Members {
				t.Logf("etcd %s log:\n%s", m.Name, tail(m.log.String(), 4000))
			}
		}
	})
	for _, m := range c.Members {
		m.args = []string{
			"--name", m.Name,
			"--data-dir", m.Dir,
			"--listen-client-urls", m.ClientURL,
			"--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL,
			"--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", "plasma-test",
			"--initial-cluster-state", "new",
			"--heartbeat-interval", "50",
			"--election-timeout", "500",
			"--logger", "zap",
			"--log-outputs", "stderr",
			"--log-level", "warn",
		}
		if err := m.start(bin); err != nil {
			t.Fatalf("start etcd %s: %v", m.Name, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, m := range c.Members {
		if err := m.waitHealthy(deadline); err != nil {
			t.Fatalf("etcd %s: %v\n%s", m.Name, err, tail(m.log.String(), 4000))
		}
	}
	return c
}

// Endpoints are the client URLs of all members (killed ones included).
func (c *ExternalCluster) Endpoints() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientURL
	}
	return out
}

// Kill SIGKILLs member i and waits for it to exit.
func (c *ExternalCluster) Kill(i int) { c.Members[i].stop(syscall.SIGKILL) }

// Pause SIGSTOPs member i: its connections stay open but nothing answers,
// as with a hung machine or a partition that drops packets.
func (c *ExternalCluster) Pause(i int) {
	p := c.Members[i].cmd.Process
	p.Signal(syscall.SIGSTOP)
	// The signal is delivered asynchronously: wait until every thread
	// has stopped (state T), so nothing is answered after Pause returns.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if stopped(p.Pid) {
			return
		}
	}
}

// stopped reports whether every thread of process pid is stopped.
func stopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		// The state follows the command name in parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
			return false
		}
	}
	return true
}

// Resume SIGCONTs member i after Pause.
func (c *ExternalCluster) Resume(i int) { c.Members[i].cmd.Process.Signal(syscall.SIGCONT) }

// Restart starts member i again after Kill, with its data directory and
// ports, and waits until it is healthy (with a quorum).
func (c *ExternalCluster) Restart(t testing.TB, i int) {
	t.Helper()
	m := c.Members[i]
	m.stop(syscall.SIGKILL)
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if err = m.start(EtcdBinary()); err != nil {
			t.Fatalf("restart etcd %s: %v", m.Name, err)
		}
		if err = m.waitHealthy(deadline); err == nil {
			return
		}
		// The ports of the killed process may not be free yet.
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("restart etcd %s: %v\n%s", m.Name, err, tail(m.log.String(), 4000))
}

func (m *ExternalMember) start(bin string) error {
	m.cmd = exec.Command(bin, m.args...)
	m.cmd.Stdout = m.log
	m.cmd.Stderr = m.log
	m.cmd.SysProcAttr = sysProcAttr()
	if err := m.cmd.Start(); err != nil {
		return err
	}
	m.done = make(chan struct{})
	cmd, done := m.cmd, m.done
	go func() {
		cmd.Wait()
		close(done)
	}()
	return nil
}

func (m *ExternalMember) stop(sig syscall.Signal) {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.done:
		return
	default:
	}
	m.cmd.Process.Signal(sig)
	m.cmd.Process.Signal(syscall.SIGCONT) // a paused process handles no signal but SIGKILL
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
}

func (m *ExternalMember) waitHealthy(deadline time.Time) error {
	client := &http.Client{Timeout: time.Second}
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-m.done:
			return fmt.Errorf("exited: %v", m.cmd.ProcessState)
		default:
		}
		resp, err := client.Get(m.ClientURL + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"health":"true"`)) {
				return nil
			}
			last = fmt.Sprintf("%s %s", resp.Status, b)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not healthy in time (last: %s)", last)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
