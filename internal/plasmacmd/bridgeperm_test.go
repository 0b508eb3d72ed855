package plasmacmd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// An import of a file the stream server's user cannot read is refused
// with "permission denied", to a plain NATS client and to plasma import
// --nats, and leaves nothing in the store. Root reads every file, so when
// the tests run as root the store and the stream server run as nobody.
func TestImportPermissionDenied(t *testing.T) {
	var cred *syscall.Credential
	dir := testutil.ShortDir(t)
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("the processes of this test run as nobody when the tests run as root: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	// The binaries' directory is private to this user: link them into
	// one the other user can enter.
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"plasma-store-server", "plasma-stream-server"} {
		if err := os.Link(filepath.Join(testutil.Binaries(t), b), filepath.Join(bin, b)); err != nil {
			t.Fatalf("link %s where nobody can run it: %v", b, err)
		}
	}
	run := func(name string, args ...string) <-chan struct{} {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Stderr = testWriter{t, name}
		return testutil.Run(t, cmd)
	}
	sock := filepath.Join(dir, "store.sock")
	testutil.WaitSocket(t, sock, run("plasma-store-server", "-m", "32MiB", "-s", sock))
	natsAddr := testutil.FreeAddr(t)
	natsDir := filepath.Join(dir, "nats")
	run("plasma-stream-server", "-s", sock, "-p", strconv.Itoa(testutil.FreePort(t, "127.0.0.1")), "--bind", "127.0.0.1",
		"--node-name", "p", "--log-level", "warn", "--nats", "embedded", "--nats-listen", natsAddr, "--nats-dir", natsDir)
	testutil.WaitTCP(t, natsAddr)

	// Readable directories, an unreadable file: the file itself is refused.
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(data, "secret.bin")
	if err := os.WriteFile(secret, testutil.Pattern(1<<20, 3), 0o600); err != nil {
		t.Fatal(err)
	}
	if cred == nil {
		os.Chmod(secret, 0) // a user that is not root cannot read its own mode-0 file
	}
	nc := connect(t, "nats://"+natsAddr)
	var reply struct {
		Error string `json:"error"`
		ID    string `json:"id"`
	}
	var m *nats.Msg
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if m, err = nc.Request("plasma.import", []byte(secret), 30*time.Second); err == nil {
			break
		}
		if time.Now().After(deadline) { // the bridge subscribes a moment after NATS listens
			t.Fatalf("request plasma.import: %v", err)
		}
	}
	if err := json.Unmarshal(m.Data, &reply); err != nil || !strings.Contains(reply.Error, secret+": permission denied: the stream server's user cannot read it") {
		t.Fatalf("import of a file the server cannot read: reply %s; want an error naming the file, saying the server's user cannot read it", m.Data)
	}
	out, err := testutil.RunBinary(t, "plasma", "import", "--nats", "nats://"+natsAddr, secret)
	if err == nil || !strings.Contains(out, "the stream server's user cannot read it") {
		t.Fatalf("plasma import --nats of a file the server cannot read: %v: %s", err, out)
	}
	var opts []store.ConnectOption
	if cred != nil {
		opts = append(opts, store.WithSocketOwner(cred.Uid))
	}
	st, err := store.Connect(context.Background(), sock, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	objs, err := st.List(context.Background())
	if err != nil || len(objs) != 0 {
		t.Fatalf("the store after the refused imports: %v (err %v); want it empty", objs, err)
	}
}

// connect is a plain nats.go connection.
func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// testWriter logs a process's stderr in the test's log.
type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(fmt.Sprintf("%s: %s", w.name, strings.TrimRight(string(p), "\n")))
	return len(p), nil
}
