package bridge_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"lukechampine.com/blake3"

	"github.com/plasmastream/plasmastream/internal/natsconn"
	"github.com/plasmastream/plasmastream/internal/streamserver"
	"github.com/plasmastream/plasmastream/internal/testnode"
	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
)

// imported is the reply to plasma.import, decoded here on its own (not
// with the bridge's types), as a foreign process would.
type imported struct {
	ID      string `json:"id"`
	Hash    string `json:"hash"`
	Size    uint64 `json:"size"`
	Existed bool   `json:"existed"`
}

// A plain NATS client imports files by request, as `nats request
// plasma.import PATH` does: the blob is stored under its BLAKE3 address
// and verifies; bad requests get a clear error and leave nothing.
func TestImportByRequest(t *testing.T) {
	dir := t.TempDir()
	n := start(t, "importer", embedded(t, natsconn.Sites{}), func(c *streamserver.Config) { c.Bridge.ImportDirs = []string{dir} })
	nc := client(t, n.Server.NATSURL())
	st := testutil.StoreClient(t, n.Socket)
	ctx := context.Background()

	files := map[string][]byte{"big.bin": testutil.Pattern(5<<20+123, 7), "small.txt": []byte("a sloth\n"), "empty": nil}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var im imported
		if e := request(t, nc, "plasma.import", []byte(path), &im); e != "" {
			t.Fatalf("import %s: %s", name, e)
		}
		sum := blake3.Sum256(data)
		if im.Hash != hex.EncodeToString(sum[:]) || im.ID != im.Hash[:40] || im.Size != uint64(len(data)) {
			t.Fatalf("import %s: reply %+v; want hash %x, its first 40 digits as id, size %d", name, im, sum, len(data))
		}
		id, _ := store.ParseObjectID(im.ID)
		obj, err := st.GetVerified(ctx, id, 0)
		if err != nil {
			t.Fatalf("%s in the store: %v", name, err)
		}
		if !bytes.Equal(obj.Data, data) {
			t.Fatalf("%s: stored bytes differ from the file", name)
		}
		st.Release(ctx, id)
		// Importing it again stores nothing more.
		var again imported
		if e := request(t, nc, "plasma.import.importer", []byte(`{"path": "`+path+`"}`), &again); e != "" || again.ID != im.ID || !again.Existed {
			t.Fatalf("import %s again: %+v, error %q; want the same id, existed", name, again, e)
		}
	}

	sparse := filepath.Join(dir, "huge")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(storeSize + 1)
	f.Close()
	outside := filepath.Join(t.TempDir(), "outside")
	os.WriteFile(outside, []byte("secret"), 0o644)
	for _, c := range []struct{ payload, want string }{
		{filepath.Join(dir, "missing"), filepath.Join(dir, "missing") + ": no such file on this node's machine"},
		{dir, "not a regular file (a directory)"},
		{"relative/path", "absolute path"},
		{sparse, "too large"},
		{outside, "not under an import directory"},
		{"", "no path"},
		{`{"path": 3}`, "not valid JSON"},
		{`{"path": "` + filepath.Join(dir, "big.bin") + `", "announce": "a.*"}`, "wildcards"},
	} {
		if e := request(t, nc, "plasma.import", []byte(c.payload), nil); !strings.Contains(e, c.want) {
			t.Errorf("import %q: error %q; want it to say %q", c.payload, e, c.want)
		}
	}
	// One sentence, not Go's error text after it.
	if e := request(t, nc, "plasma.import", []byte(filepath.Join(dir, "missing")), nil); e != "import "+filepath.Join(dir, "missing")+": no such file on this node's machine" {
		t.Errorf("import of a missing file: error %q", e)
	}
	objs, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != len(files) {
		t.Errorf("the store holds %d objects after the failed imports; want the %d imported", len(objs), len(files))
	}
	for _, o := range objs {
		if o.State != store.StateSealed {
			t.Errorf("object %s is left %s", o.ID, o.State)
		}
	}
}

// stat and locate answer a plain client about an object and the node.
func TestStatAndLocate(t *testing.T) {
	n := start(t, "asked", embedded(t, natsconn.Sites{}))
	nc := client(t, n.Server.NATSURL())
	st := testutil.StoreClient(t, n.Socket)
	data := testutil.Pattern(300<<10, 1)
	id, err := st.Put(context.Background(), data, []byte("meta"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Node         string `json:"node"`
		Hash         string `json:"hash"`
		Size         uint64 `json:"size"`
		MetadataSize int    `json:"metadata_size"`
	}
	sum := blake3.Sum256(data)
	if e := request(t, nc, "plasma.stat", []byte(id.String()), &s); e != "" || s.Size != uint64(len(data)) || s.MetadataSize != 4 ||
		s.Hash != hex.EncodeToString(sum[:]) || s.Node != "asked" {
		t.Fatalf("stat %s: %+v, error %q", id, s, e)
	}
	var ns struct {
		Node     string `json:"node"`
		Capacity uint64 `json:"capacity"`
	}
	if e := request(t, nc, "plasma.stat.asked", nil, &ns); e != "" || ns.Node != "asked" || ns.Capacity != storeSize {
		t.Fatalf("stat of the node: %+v, error %q", ns, e)
	}
	var loc struct {
		Holders []struct{ Node, Addr, Via string } `json:"holders"`
	}
	if e := request(t, nc, "plasma.locate", []byte(hex.EncodeToString(sum[:])), &loc); e != "" || len(loc.Holders) != 1 ||
		loc.Holders[0].Node != "asked" || loc.Holders[0].Addr != n.Addr || loc.Holders[0].Via != "local" {
		t.Fatalf("locate: %+v, error %q", loc, e)
	}
	missing := store.RandomObjectID()
	if e := request(t, nc, "plasma.stat", []byte(missing.String()), nil); !strings.Contains(e, "not in this node's store") {
		t.Fatalf("stat of a missing object: error %q", e)
	}
	if e := request(t, nc, "plasma.locate", []byte("xyz"), nil); !strings.Contains(e, "neither an object id") {
		t.Fatalf("locate xyz: error %q", e)
	}
}

// An import streams the file into shared memory: the Go heap of the
// server (in this process) grows by far less than the file.
func TestImportNotThroughTheHeap(t *testing.T) {
	_, nc := importer(t, "streamer")
	const size = 48 << 20
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, testutil.Pattern(size, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if e := request(t, nc, "plasma.import", []byte(path), nil); e != "" {
		t.Fatal(e)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > size/4 {
		t.Fatalf("importing %d bytes allocated %d bytes of Go heap; want the file streamed into the store", size, grew)
	}
}

// importer is a node with its own embedded NATS, and a plain client of
// that NATS.
func importer(t *testing.T, name string) (*testnode.Node, *nats.Conn) {
	n := start(t, name, embedded(t, natsconn.Sites{}))
	return n, client(t, n.Server.NATSURL())
}

// A file that fits the store but not the room left beside objects in use
// is refused as too large for the store now, leaving nothing; once they
// are released, the same import succeeds.
func TestImportTooLargeNow(t *testing.T) {
	n, nc := importer(t, "full")
	st, ctx := testutil.StoreClient(t, n.Socket), context.Background()
	pinned, err := st.Put(ctx, testutil.Pattern(60<<20, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetOne(ctx, pinned, 0); err != nil { // in use: not evictable
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "f")
	data := testutil.Pattern(48<<20, 2)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if e := request(t, nc, "plasma.import", []byte(path), nil); !strings.Contains(e, path+": too large for the store now") {
		t.Fatalf("import of 48 MiB beside 60 MiB in use in a 96 MiB store: error %q; want too large for the store now", e)
	}
	if objs, err := st.List(ctx); err != nil || len(objs) != 1 || objs[0].ID != pinned {
		t.Fatalf("the store after the refused import: %+v (err %v); want only the object in use", objs, err)
	}
	st.Release(ctx, pinned)
	var im imported
	if e := request(t, nc, "plasma.import", []byte(path), &im); e != "" || im.Size != uint64(len(data)) {
		t.Fatalf("import once the object in use was released: %+v, error %q", im, e)
	}
}

// A file written to while it is imported is stored only if what was
// copied is what was hashed; otherwise the import is refused ("changed")
// and the object it had created is aborted: nothing unsealed is left, and
// every object stored is its content's address.
func TestImportOfAChangingFile(t *testing.T) {
	n, nc := importer(t, "changing")
	st, ctx := testutil.StoreClient(t, n.Socket), context.Background()
	const size = 16 << 20
	path := filepath.Join(t.TempDir(), "growing.log")
	if err := os.WriteFile(path, testutil.Pattern(size, 5), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { // a writer that never rests: every pass sees other bytes
		defer close(done)
		var b [8]byte
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			binary.LittleEndian.PutUint64(b[:], i)
			f.WriteAt(b[:], int64(i*4093%(size-8)))
		}
	}()
	defer func() { close(stop); <-done }()
	changed := 0
	for try := 0; try < 20 && changed < 3; try++ {
		var im imported
		e := request(t, nc, "plasma.import", []byte(path), &im)
		switch {
		case strings.Contains(e, "the file changed while it was imported"):
			changed++
		case e != "":
			t.Fatalf("import of a file being written: %s", e)
		default: // the writer rested for both passes: a consistent copy
			id, _ := store.ParseObjectID(im.ID)
			obj, err := st.GetVerified(ctx, id, 0)
			if err != nil {
				t.Fatalf("the object imported: %v", err)
			}
			if sum := blake3.Sum256(obj.Data); hex.EncodeToString(sum[:]) != im.Hash {
				t.Fatalf("object %s holds bytes that are not its address's", id)
			}
			st.Release(ctx, id)
		}
	}
	if changed == 0 {
		t.Fatal("no import of a file written to all along was refused as changed")
	}
	objs, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.State != store.StateSealed {
			t.Errorf("object %s is left %s after a refused import", o.ID, o.State)
		}
	}
}
