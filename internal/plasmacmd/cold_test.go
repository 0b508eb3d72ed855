package plasmacmd_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// The cold tier from the command line: put --persist and persist write
// to it, ls and stat show what is cold, a get restores, rm deletes the
// copy, and import s3:// stores a bucket's object under its content
// address.
func TestColdCommands(t *testing.T) {
	s3 := testutil.StartS3(t)
	sock, _ := testutil.StartStoreProcess(t, "16MiB", "-e", s3.URL("cli"), "--s3-part-size", "5MiB")
	c := &cli{t: t, bin: filepath.Join(testutil.Binaries(t), "plasma"), sock: sock}
	data := testutil.Pattern(3<<20, 1)
	file := filepath.Join(t.TempDir(), "in")
	os.WriteFile(file, data, 0o644)

	id := strings.TrimSpace(c.ok(nil, "put", "--persist", file))
	if ls := c.ok(nil, "ls"); !strings.Contains(ls, id) || !strings.Contains(ls, "sealed+cold") {
		t.Fatalf("ls after put --persist:\n%s", ls)
	}
	other := strings.TrimSpace(c.ok(testutil.Pattern(100<<10, 2), "put", "-"))
	c.ok(nil, "persist", other)
	c.ok(nil, "evict", "16MiB")
	if ls := c.ok(nil, "ls"); strings.Count(ls, " cold ") != 2 {
		t.Fatalf("ls after evicting persisted objects, want both cold:\n%s", ls)
	}
	if st := c.ok(nil, "stat"); !strings.Contains(st, "cold tier:     2 objects") {
		t.Fatalf("stat:\n%s", st)
	}
	if got := c.ok(nil, "get", "--verify", id); got != string(data) {
		t.Fatal("get of a cold object: wrong bytes")
	}
	c.ok(nil, "rm", other)
	if ls := c.ok(nil, "ls"); strings.Contains(ls, other) {
		t.Fatalf("ls after rm of a cold object:\n%s", ls)
	}

	body := testutil.Pattern(6<<20+5, 3)
	if _, err := s3.Client().PutObject(context.Background(), s3.Bucket, "in/blob", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	out := strings.Fields(c.ok(nil, "import", "s3://"+s3.Bucket+"/in/blob"))
	if len(out) != 2 || out[0] != store.ContentID(body).String() {
		t.Fatalf("import s3:// printed %q, want the content address %s", out, store.ContentID(body))
	}
	if got := c.ok(nil, "get", "--verify", out[0]); got != string(body) {
		t.Fatal("imported object: wrong bytes")
	}
	c.fail("does not exist", "import", "s3://"+s3.Bucket+"/in/missing")
}

func TestPersistWithoutColdTier(t *testing.T) {
	c := newCLI(t)
	id := strings.TrimSpace(c.ok([]byte("x"), "put", "-"))
	c.fail("no cold tier; start it with -e", "persist", id)
}
