package plasmacmd_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

type cli struct {
	t    *testing.T
	bin  string
	sock string
}

func newCLI(t *testing.T) *cli {
	sock, _ := testutil.StartStoreProcess(t, "8MiB")
	return &cli{t: t, bin: filepath.Join(testutil.Binaries(t), "plasma"), sock: sock}
}

// run runs plasma with args and stdin, returning stdout, stderr and
// whether it exited zero.
func (c *cli) run(stdin []byte, args ...string) (string, string, bool) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"-s", c.sock}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err == nil
}

func (c *cli) ok(stdin []byte, args ...string) string {
	c.t.Helper()
	out, errs, ok := c.run(stdin, args...)
	if !ok {
		c.t.Fatalf("plasma %v failed: %s", args, errs)
	}
	return out
}

// fail runs a command that must fail with one clear line on stderr.
func (c *cli) fail(want string, args ...string) {
	c.t.Helper()
	out, errs, ok := c.run(nil, args...)
	if ok {
		c.t.Fatalf("plasma %v succeeded (%q); want failure", args, out)
	}
	errs = strings.TrimSpace(errs)
	if !strings.HasPrefix(errs, "plasma: ") || !strings.Contains(errs, want) || strings.Contains(errs, "goroutine") {
		c.t.Fatalf("plasma %v: stderr %q, want one line mentioning %q", args, errs, want)
	}
}

func TestPutGet(t *testing.T) {
	c := newCLI(t)
	data := bytes.Repeat([]byte("plasma "), 100000)
	file := filepath.Join(t.TempDir(), "in")
	os.WriteFile(file, data, 0o644)

	id := strings.TrimSpace(c.ok(nil, "put", "--metadata", "text/plain", file))
	if id != store.ContentID(data).String() {
		t.Fatalf("put printed %q, want the content address %s", id, store.ContentID(data))
	}
	if again := strings.TrimSpace(c.ok(data, "put", "-")); again != id {
		t.Fatalf("putting the same bytes from stdin printed %q, want %q", again, id)
	}
	if got := c.ok(nil, "get", id); got != string(data) {
		t.Fatalf("get returned %d bytes, want %d", len(got), len(data))
	}
	if got := c.ok(nil, "get", "--metadata", id); got != "text/plain" {
		t.Fatalf("get --metadata: %q", got)
	}
	outFile := filepath.Join(t.TempDir(), "out")
	c.ok(nil, "get", "-o", outFile, id)
	if b, _ := os.ReadFile(outFile); !bytes.Equal(b, data) {
		t.Fatal("get -o wrote the wrong bytes")
	}

	chosen := "00112233445566778899aabbccddeeff00112233"
	metaFile := filepath.Join(t.TempDir(), "meta")
	os.WriteFile(metaFile, []byte(`{"k":1}`), 0o644)
	if got := strings.TrimSpace(c.ok([]byte("x"), "put", "--id", chosen, "--metadata-file", metaFile, "-")); got != chosen {
		t.Fatalf("put --id printed %q", got)
	}
	if got := c.ok(nil, "get", "--metadata", chosen); got != `{"k":1}` {
		t.Fatalf("metadata from file: %q", got)
	}
}

func TestErrorsAreOneSentence(t *testing.T) {
	c := newCLI(t)
	missing := "ffffffffffffffffffffffffffffffffffffffff"
	c.fail("not in the store", "get", missing)
	c.fail("want 40 hex digits", "get", "abc")
	c.fail("--cold goes with --json", "locate", "--cold", missing)
	c.fail("not found", "rm", missing)
	c.fail("at most 65536", "put", "--metadata", strings.Repeat("m", 65537), "-")
	c.fail("not both", "put", "--metadata", "a", "--metadata-file", "b", "-")
	c.fail("no such file", "put", "/nonexistent/file")
	c.ok(nil, "put", "--id", missing, "/dev/null")
	c.fail("already exists", "put", "--id", missing, "/dev/null")
	c.sock = "/nonexistent.sock"
	c.fail("is plasma-store-server running?", "stat")
}

func TestGetWaitsForTimeout(t *testing.T) {
	c := newCLI(t)
	start := time.Now()
	c.fail("waited 300 ms", "get", "--timeout", "300", "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee")
	if time.Since(start) < 300*time.Millisecond {
		t.Fatal("get --timeout returned early")
	}
	// A get waiting for an object is released when another put seals it.
	id := store.ContentID([]byte("arrives later")).String()
	done := make(chan string)
	go func() { out, _, _ := c.run(nil, "get", "--timeout", "-1", id); done <- out }()
	time.Sleep(200 * time.Millisecond)
	c.ok([]byte("arrives later"), "put", "-")
	select {
	case out := <-done:
		if out != "arrives later" {
			t.Fatalf("blocked get returned %q", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocked get not released")
	}
}

func TestLsStatRmEvict(t *testing.T) {
	c := newCLI(t)
	a := strings.TrimSpace(c.ok([]byte("alpha"), "put", "--metadata", "m", "-"))
	b := strings.TrimSpace(c.ok(bytes.Repeat([]byte("b"), 1<<20), "put", "-"))

	var infos []map[string]any
	if err := json.Unmarshal([]byte(c.ok(nil, "ls", "--json")), &infos); err != nil || len(infos) != 2 {
		t.Fatalf("ls --json: %v %v", infos, err)
	}
	for _, key := range []string{"id", "data_size", "metadata_size", "ref_count", "state", "create_time", "construct_duration", "creator_pid"} {
		if _, ok := infos[0][key]; !ok {
			t.Errorf("ls --json lacks %q", key)
		}
	}
	if infos[0]["id"] != a || infos[0]["data_size"] != 5.0 || infos[0]["metadata_size"] != 1.0 || infos[0]["state"] != "sealed" {
		t.Errorf("ls --json first object: %v", infos[0])
	}
	table := c.ok(nil, "ls")
	if !strings.Contains(table, a) || !strings.Contains(table, "1.0 MiB") || !strings.HasPrefix(table, "ID") {
		t.Errorf("ls table:\n%s", table)
	}

	var st map[string]float64
	json.Unmarshal([]byte(c.ok(nil, "stat", "--json")), &st)
	if st["capacity"] != 8<<20 || st["objects"] != 2 || st["used"] < 1<<20 {
		t.Errorf("stat --json: %v", st)
	}
	if !strings.Contains(c.ok(nil, "stat"), "capacity:") {
		t.Error("stat table")
	}

	if out := c.ok(nil, "rm", a); !strings.Contains(out, "deleted "+a) {
		t.Errorf("rm: %q", out)
	}
	if out := c.ok(nil, "evict", "1"); !strings.Contains(out, "evicted 1048576 bytes") {
		t.Errorf("evict: %q", out)
	}
	if out := c.ok(nil, "ls", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("after rm and evict, ls --json = %q (b was %s)", out, b)
	}
}

func TestWatch(t *testing.T) {
	c := newCLI(t)
	cmd := exec.Command(c.bin, "-s", c.sock, "watch", "--json")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	time.Sleep(300 * time.Millisecond) // let it subscribe
	id := strings.TrimSpace(c.ok([]byte("watched"), "put", "-"))
	c.ok(nil, "rm", id)
	lines := bufio.NewScanner(stdout)
	for _, want := range []string{"sealed", "deleted"} {
		if !lines.Scan() {
			t.Fatalf("watch ended before the %s event", want)
		}
		var ev map[string]any
		if err := json.Unmarshal(lines.Bytes(), &ev); err != nil || ev["event"] != want || ev["id"] != id || ev["data_size"] != 7.0 {
			t.Fatalf("watch line %q, want a %s event for %s", lines.Text(), want, id)
		}
	}
}

func TestImportExport(t *testing.T) {
	c := newCLI(t)
	data := bytes.Repeat([]byte("import me "), 300000)
	in := filepath.Join(t.TempDir(), "in")
	os.WriteFile(in, data, 0o644)
	fields := strings.Fields(c.ok(nil, "import", in))
	sum := blake3.Sum256(data)
	if len(fields) != 2 || fields[0] != store.ContentID(data).String() || fields[1] != hex.EncodeToString(sum[:]) {
		t.Fatalf("import printed %v, want the id and b3sum's hash %x", fields, sum)
	}
	out := filepath.Join(t.TempDir(), "out")
	c.ok(nil, "export", fields[0], out)
	if b, _ := os.ReadFile(out); !bytes.Equal(b, data) {
		t.Fatal("export wrote other bytes")
	}
	// An object under a chosen id, sealed without a digest, is verified
	// against the digest the store computes for it (Outboard).
	odd := "00000000000000000000000000000000000000aa"
	c.ok([]byte("odd"), "put", "--id", odd, "-")
	oddOut := filepath.Join(t.TempDir(), "odd")
	c.ok(nil, "export", odd, oddOut)
	if b, _ := os.ReadFile(oddOut); string(b) != "odd" {
		t.Fatalf("exported %q", b)
	}
}

// plasma refuses a store socket owned by another user unless told to
// trust it with --socket-owner. Needs root (testutil.ForeignOwner).
func TestSocketOwner(t *testing.T) {
	c := newCLI(t)
	testutil.ForeignOwner(t, c.sock)
	c.fail("is owned by uid 65534", "ls")
	c.fail("is owned by uid 65534", "watch")
	c.ok(nil, "--socket-owner", "65534", "ls")
	c.fail("no such user", "--socket-owner", "no-such-user-plasma", "ls")
}

// get --verify refuses an object another client overwrote after Seal
// (every client maps the arena writable); a plain get returns the bytes.
func TestGetVerify(t *testing.T) {
	c := newCLI(t)
	sc := testutil.StoreClient(t, c.sock)
	ctx := context.Background()
	id := store.RandomObjectID()
	buf, err := sc.Create(ctx, id, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, "hello")
	if err := sc.Seal(ctx, id); err != nil {
		t.Fatal(err)
	}
	if out := c.ok(nil, "get", "--verify", id.String()); out != "hello" {
		t.Fatalf("get --verify of an intact object: %q", out)
	}
	buf[0] = 'j'
	if out := c.ok(nil, "get", id.String()); out != "jello" {
		t.Fatalf("plain get: %q", out)
	}
	c.fail("does not match its BLAKE3 digest", "get", "--verify", id.String())
	c.fail("does not match its BLAKE3 digest", "export", id.String(), filepath.Join(t.TempDir(), "out"))
}
