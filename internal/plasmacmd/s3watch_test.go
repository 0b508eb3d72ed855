package plasmacmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/plasmastream/plasmastream/internal/s3import"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// watchProc is a running `plasma import --watch`.
type watchProc struct {
	t        *testing.T
	cmd      *exec.Cmd
	out, log *testutil.Buffer
	exited   <-chan struct{}
}

func startWatch(t *testing.T, sock string, args ...string) *watchProc {
	t.Helper()
	w := &watchProc{t: t, out: new(testutil.Buffer), log: new(testutil.Buffer)}
	w.cmd = exec.Command(filepath.Join(testutil.Binaries(t), "plasma"), append([]string{"-s", sock, "import", "--watch"}, args...)...)
	w.cmd.Stdout = w.out
	w.cmd.Stderr = &teeLog{t: t, b: w.log}
	w.exited = testutil.Run(t, w.cmd)
	return w
}

type teeLog struct {
	t *testing.T
	b *testutil.Buffer
}

func (l *teeLog) Write(p []byte) (int, error) {
	l.t.Logf("watch: %s", strings.TrimRight(string(p), "\n"))
	return l.b.Write(p)
}

// waitFor waits until the watch has printed a line with these fields
// and returns it.
func (w *watchProc) waitFor(fields ...string) []string {
	w.t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(w.out.String(), "\n") {
			if f := strings.Fields(line); len(f) == len(fields) && containsAll(f, fields) {
				return f
			}
		}
		select {
		case <-w.exited:
			w.t.Fatalf("the watch exited before printing %v; it printed:\n%s", fields, w.out)
		default:
		}
	}
	w.t.Fatalf("the watch did not print %v in a minute; it printed:\n%s", fields, w.out)
	return nil
}

func containsAll(f, want []string) bool {
	for i := range want {
		if want[i] != "" && f[i] != want[i] {
			return false
		}
	}
	return true
}

// waitLog waits until the watch has logged s.
func (w *watchProc) waitLog(s string) {
	w.t.Helper()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(w.log.String(), s); time.Sleep(20 * time.Millisecond) {
		select {
		case <-w.exited:
			w.t.Fatalf("the watch exited before logging %q", s)
		default:
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("the watch did not log %q in a minute", s)
		}
	}
}

// stop interrupts the watch and returns its exit code.
func (w *watchProc) stop() int {
	w.t.Helper()
	w.cmd.Process.Signal(os.Interrupt)
	return w.wait()
}

func (w *watchProc) wait() int {
	w.t.Helper()
	select {
	case <-w.exited:
	case <-time.After(30 * time.Second):
		w.t.Fatal("the watch did not exit within 30 s")
	}
	return w.cmd.ProcessState.ExitCode()
}

func putS3(t *testing.T, s3 *testutil.S3, key string, body []byte) {
	t.Helper()
	if _, err := s3.Client().PutObject(context.Background(), s3.Bucket, key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// wantStored checks that the store holds body under its content address.
func wantStored(t *testing.T, st *store.Client, body []byte) {
	t.Helper()
	id := store.ContentID(body)
	obj, err := st.GetVerified(context.Background(), id, 0)
	if err != nil {
		t.Fatalf("object %s: %v", id, err)
	}
	defer st.Release(context.Background(), id)
	if !bytes.Equal(obj.Data, body) {
		t.Fatalf("object %s: wrong bytes", id)
	}
}

// plasma import --watch against a real S3 server and a real store:
// objects under the prefix are imported (those outside are not), new
// and changed objects follow, the watch survives its S3 service going
// away and coming back, ends cleanly on SIGINT, and a restart with the
// same state file imports nothing again.
func TestImportWatch(t *testing.T) {
	s3 := testutil.StartS3(t)
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	st := testutil.StoreClient(t, sock)
	a, b, out, inbox := testutil.Pattern(3<<20+1, 1), testutil.Pattern(1000, 2), testutil.Pattern(500, 3), testutil.Pattern(600, 4)
	putS3(t, s3, "in/a", a)
	putS3(t, s3, "in/sub/b", b)
	putS3(t, s3, "out/c", out)
	putS3(t, s3, "inbox", inbox)
	state := filepath.Join(t.TempDir(), "watch.json")
	args := []string{"--interval", "100ms", "--state", state, "s3://" + s3.Bucket + "/in/"}
	w := startWatch(t, sock, args...)
	w.waitFor(store.ContentID(a).String(), "in/a", strconv.Itoa(len(a)))
	w.waitFor(store.ContentID(b).String(), "in/sub/b", "1000")
	wantStored(t, st, a)
	wantStored(t, st, b)

	d := testutil.Pattern(2<<20, 5)
	putS3(t, s3, "in/d", d)
	w.waitFor(store.ContentID(d).String(), "in/d", strconv.Itoa(len(d)))
	a2 := testutil.Pattern(3<<20+1, 6) // same size, new bytes: a new ETag
	putS3(t, s3, "in/a", a2)
	w.waitFor(store.ContentID(a2).String(), "in/a", strconv.Itoa(len(a2)))
	wantStored(t, st, a2)

	s3.Stop()
	w.waitLog("cannot list the bucket")
	s3.Start()
	e := testutil.Pattern(70<<10, 7)
	putS3(t, s3, "in/e", e)
	w.waitFor(store.ContentID(e).String(), "in/e", strconv.Itoa(len(e)))
	wantStored(t, st, e)

	for _, body := range [][]byte{out, inbox} {
		if ok, err := st.Contains(context.Background(), store.ContentID(body)); err != nil || ok {
			t.Fatalf("an object outside the prefix was imported (%v, %v):\n%s", ok, err, w.out)
		}
	}
	if n := strings.Count(w.out.String(), "\n"); n != 5 {
		t.Fatalf("the watch printed %d lines, want 5 (a, b, d, a again, e):\n%s", n, w.out)
	}
	if code := w.stop(); code != 0 {
		t.Fatalf("the watch exited with %d on SIGINT, want 0", code)
	}

	// Restarted on the same state: only what is new ("in/z", listed after
	// every other key) is imported.
	w = startWatch(t, sock, args...)
	z := testutil.Pattern(1234, 8)
	putS3(t, s3, "in/z", z)
	w.waitFor(store.ContentID(z).String(), "in/z", "1234")
	time.Sleep(300 * time.Millisecond) // a few more polls
	if got := strings.TrimSpace(w.out.String()); strings.Count(got, "\n") != 0 {
		t.Fatalf("the restarted watch imported again what it had imported:\n%s", got)
	}
}

// --new-only and --json; an object that fails (the store has no room for
// it) is logged with its key and retried without stopping the watch; the
// store going away ends the watch with an error, its state file intact.
func TestImportWatchFailures(t *testing.T) {
	s3 := testutil.StartS3(t)
	sock, storeCmd := testutil.StartStoreProcess(t, "8MiB")
	st := testutil.StoreClient(t, sock)
	old := testutil.Pattern(4000, 1)
	putS3(t, s3, "new/old", old)
	state := filepath.Join(t.TempDir(), "state", "watch.json")
	w := startWatch(t, sock, "--interval", "100ms", "--state", state, "--new-only", "--json", "s3://"+s3.Bucket+"/new/")
	w.waitLog("new-only: what the prefix holds now is recorded")
	fresh := testutil.Pattern(5000, 2)
	putS3(t, s3, "new/fresh", fresh)
	line := w.waitFor("")
	var im s3import.Imported
	if err := json.Unmarshal([]byte(line[0]), &im); err != nil {
		t.Fatalf("--json printed %q: %v", line[0], err)
	}
	if im.ID != store.ContentID(fresh) || im.Key != "new/fresh" || im.Bucket != s3.Bucket || im.Size != 5000 || im.ETag == "" {
		t.Fatalf("--json printed %+v", im)
	}
	if ok, _ := st.Contains(context.Background(), store.ContentID(old)); ok {
		t.Fatal("--new-only imported what the bucket held before")
	}

	// 5 MiB needs 10 MiB for a moment (a scratch copy): more than the store has.
	big := testutil.Pattern(5<<20, 3)
	putS3(t, s3, "new/big", big)
	w.waitLog("key=new/big")
	w.waitLog("make room in the store")
	after := testutil.Pattern(3000, 4)
	putS3(t, s3, "new/later", after)
	for deadline := time.Now().Add(time.Minute); !strings.Contains(w.out.String(), `"new/later"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("an object put after a failing one was not imported:\n%s", w.out)
		}
	}
	small := testutil.Pattern(2000, 5) // the failing key replaced: imported at once
	putS3(t, s3, "new/big", small)
	for deadline := time.Now().Add(time.Minute); !strings.Contains(w.out.String(), store.ContentID(small).String()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a replaced failing object was not imported:\n%s", w.out)
		}
	}

	storeCmd.Process.Kill()
	putS3(t, s3, "new/orphan", testutil.Pattern(100, 6))
	if code := w.wait(); code == 0 {
		t.Fatal("the watch exited 0 when its store died")
	}
	if !strings.Contains(w.log.String(), "store is unavailable") {
		t.Fatalf("the watch's last words do not say the store is gone:\n%s", w.log)
	}
	s, err := s3import.LoadState(state)
	if err != nil || s == nil || len(s.Objects) != 4 || s.Objects["new/old"].Hash != "" || s.Objects["new/big"].Hash == "" {
		t.Fatalf("state after the store died: %+v, %v", s, err)
	}
}

// A watch with --announce: the node in front of the watched store
// announces each imported object, and a node subscribed to the subject
// replicates it; plasma import s3://... --announce does the same for one
// object.
func TestImportWatchAnnounce(t *testing.T) {
	s3 := testutil.StartS3(t)
	listen := testutil.FreeAddr(t)
	url := "nats://" + listen
	a := testutil.StartNode(t, "a", "64MiB", "--nats", "embedded", "--nats-listen", listen, "--nats-dir", t.TempDir())
	b := testutil.StartNode(t, "b", "64MiB", "--nats", url, "--subscribe.subjects", "lake.>")
	bst := testutil.StoreClient(t, b.Socket)
	w := startWatch(t, a.Socket, "--interval", "100ms", "--state", filepath.Join(t.TempDir(), "w.json"),
		"--nats", url, "--node", "a", "--announce", "lake.raw", "s3://"+s3.Bucket+"/raw/")
	body := testutil.Pattern(3<<20+7, 9)
	putS3(t, s3, "raw/frame-1", body)
	w.waitFor(store.ContentID(body).String(), "raw/frame-1", strconv.Itoa(len(body)))
	waitStored(t, bst, body)

	one := testutil.Pattern(1<<20, 10)
	putS3(t, s3, "single", one)
	out, err := testutil.RunBinary(t, "plasma", "-s", a.Socket, "import", "--nats", url, "--node", "a", "--announce", "lake.one", "s3://"+s3.Bucket+"/single")
	if err != nil || !strings.HasPrefix(out, store.ContentID(one).String()+" ") {
		t.Fatalf("plasma import s3:// --announce: %v: %s", err, out)
	}
	waitStored(t, bst, one)

	// A watch of another store than a's: a refuses to announce what its
	// store lacks; the watch logs it, keeps the object unannounced in its
	// state and asks again on each poll, which succeeds once a holds it.
	other, _ := testutil.StartStoreProcess(t, "16MiB")
	state := filepath.Join(t.TempDir(), "w2.json")
	w2 := startWatch(t, other, "--interval", "100ms", "--state", state,
		"--nats", url, "--node", "a", "--announce", "lake.late", "s3://"+s3.Bucket+"/late/")
	late := testutil.Pattern(2<<20, 11)
	putS3(t, s3, "late/x", late)
	w2.waitFor(store.ContentID(late).String(), "late/x", strconv.Itoa(len(late)))
	w2.waitLog("imported but not announced")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		s, err := s3import.LoadState(state)
		if err == nil && s != nil && s.Objects["late/x"].Unannounced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state of a watch whose announcement failed: %+v, %v", s, err)
		}
	}
	if ok, _ := bst.Contains(context.Background(), store.ContentID(late)); ok {
		t.Fatal("b replicated a blob that was never announced")
	}
	if _, err := testutil.StoreClient(t, a.Socket).Put(context.Background(), late, nil); err != nil {
		t.Fatal(err)
	}
	waitStored(t, bst, late)
	w2.stop()
	if s, err := s3import.LoadState(state); err != nil || s == nil || s.Objects["late/x"].Unannounced {
		t.Fatalf("state after the announcement succeeded: %+v, %v", s, err)
	}

	out, err = testutil.RunBinary(t, "plasma", "-s", a.Socket, "import", "--watch", "--nats", url, "--node", "nobody", "--announce", "lake.raw", "s3://"+s3.Bucket+"/raw/")
	if err == nil || !strings.Contains(out, "no node answers") {
		t.Fatalf("a watch announcing through a node that does not exist: %v: %s", err, out)
	}
}

// waitStored waits until st holds body under its content address.
func waitStored(t *testing.T, st *store.Client, body []byte) {
	t.Helper()
	id := store.ContentID(body)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if ok, err := st.Contains(context.Background(), id); err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not replicated in a minute", id)
		}
	}
	wantStored(t, st, body)
}

// SIGINT while an object is being read (the S3 service stalls in the
// middle of it, through a proxy) ends the watch at once with status 0,
// nothing of the object in the store and nothing of it in the state.
func TestImportWatchInterrupted(t *testing.T) {
	s3 := testutil.StartS3(t)
	proxy := testutil.StartProxy(t, strings.TrimPrefix(s3.Endpoint, "http://"), func(p *testutil.Proxy) { p.StallAt = 1 << 20 })
	sock, _ := testutil.StartStoreProcess(t, "64MiB")
	body := testutil.Pattern(8<<20, 1)
	putS3(t, s3, "in/big", body)
	state := filepath.Join(t.TempDir(), "w.json")
	w := startWatch(t, sock, "--s3-endpoint", "http://"+proxy.Addr, "--interval", "100ms", "--state", state, "s3://"+s3.Bucket+"/in/")
	select {
	case <-proxy.Stalled():
	case <-time.After(time.Minute):
		t.Fatal("the watch did not start reading the object")
	}
	if code := w.stop(); code != 0 {
		t.Fatalf("the watch interrupted in the middle of an object exited with %d, want 0", code)
	}
	if !strings.Contains(w.log.String(), "import abandoned") || w.out.String() != "" {
		t.Fatalf("the watch interrupted in the middle of an object printed %q", w.out)
	}
	objs, err := testutil.StoreClient(t, sock).List(context.Background())
	if err != nil || len(objs) != 0 {
		t.Fatalf("the store after an interrupted import: %d objects, %v; want none", len(objs), err)
	}
	if s, err := s3import.LoadState(state); err != nil || s == nil || len(s.Objects) != 0 {
		t.Fatalf("state after an interrupted import: %+v, %v", s, err)
	}
}
