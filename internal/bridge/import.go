package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/storewire"
	"github.com/plasmastream/plasmastream/store"
)

// Errors of an import, each replied as its sentence.
var (
	ErrNotAllowed = errors.New("not under an import directory")
	ErrNotRegular = errors.New("not a regular file")
	ErrChanged    = errors.New("the file changed while it was imported")
)

// Imported is the reply to an import.
type Imported struct {
	ID   store.ObjectID `json:"id"`
	Hash store.Digest   `json:"hash"`
	Size uint64         `json:"size"`
	// Existed: the store held the blob already; nothing was written.
	Existed   bool          `json:"existed,omitempty"`
	Announced *Announcement `json:"announced,omitempty"`
}

// smallFile is the size up to which a file is read into memory and put in
// one round trip.
const smallFile = 64 << 10

// importFile stores the file at path under its BLAKE3 content address.
//
// The id is the hash's first 20 bytes, so it is known only once the file
// has been read. The file is therefore read twice, never into the Go
// heap: first hashed where it lies (mapped read-only: the page cache),
// then, under the id now known, read straight into the object's shared
// memory and hashed again as the outboard is built. The object is sealed
// only if the second hash equals the first: a file changed in between is
// refused (ErrChanged), never stored under an address that is not its
// content's. Any failure after Create aborts the object.
func importFile(ctx context.Context, st *store.Client, path string, dirs []string) (Imported, error) {
	open, err := allowed(path, dirs)
	if err != nil {
		return Imported{}, err
	}
	f, err := os.Open(open)
	if err != nil {
		return Imported{}, openError(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Imported{}, fmt.Errorf("%s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return Imported{}, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(fi.Mode()))
	}
	size := uint64(fi.Size())
	if size > st.Capacity() {
		return Imported{}, fmt.Errorf("%s: %w: the file has %d bytes, the store holds at most %d", path, store.ErrTooLarge, size, st.Capacity())
	}
	if size <= smallFile {
		return importSmall(ctx, st, f, path, size)
	}
	digest, err := hashMapped(f, size)
	if err != nil {
		return Imported{}, fmt.Errorf("%s: %w", path, err)
	}
	im := Imported{ID: store.ObjectID(digest[:store.IDSize]), Hash: digest, Size: size}
	if ok, err := st.Contains(ctx, im.ID); err == nil && ok {
		im.Existed = true
		return im, nil
	}
	buf, err := st.Create(ctx, im.ID, size, nil)
	switch {
	case errors.Is(err, store.ErrObjectExists):
		im.Existed = true // imported meanwhile by another request
		return im, nil
	case errors.Is(err, store.ErrOutOfMemory):
		return Imported{}, fmt.Errorf("%s: too large for the store now (%d bytes; the store's capacity is %d and what is in use cannot be evicted): %w", path, size, st.Capacity(), err)
	case err != nil:
		return Imported{}, fmt.Errorf("%s: create object %s: %w", path, im.ID, err)
	}
	if err := fill(ctx, st, f, buf, im); err != nil {
		st.Abort(context.Background(), im.ID)
		return Imported{}, fmt.Errorf("%s: %w; nothing was stored", path, err)
	}
	return im, nil
}

// fill reads the file into buf (the object's memory), checks its hash and
// seals the object with its outboard.
func fill(ctx context.Context, st *store.Client, f *os.File, buf []byte, im Imported) error {
	if err := readAll(ctx, f, buf); err != nil {
		return err
	}
	outboard, root := bao.Build(buf)
	if store.Digest(root) != im.Hash {
		return ErrChanged
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := st.SealDigest(sctx, im.ID, im.Hash); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	if len(outboard) <= storewire.MaxOutboard {
		st.SetOutboard(sctx, im.ID, outboard) // else the store hashes it again when asked
	}
	return st.Release(sctx, im.ID)
}

// readAll reads the file into buf in 4 MiB pieces, on every core (one
// copy from the page cache does not keep a core's memory bandwidth busy).
func readAll(ctx context.Context, f *os.File, buf []byte) error {
	const step = 4 << 20
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for off := 0; off < len(buf); off += step {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, err := f.ReadAt(buf[off:min(off+step, len(buf))], int64(off))
			switch {
			case err == io.EOF && off+n < len(buf):
				return ErrChanged // shorter than when hashed
			case err != nil && err != io.EOF:
				return fmt.Errorf("read: %w", err)
			}
			return nil
		})
	}
	return g.Wait()
}

// importSmall reads a small file into memory and puts it.
func importSmall(ctx context.Context, st *store.Client, f *os.File, path string, size uint64) (Imported, error) {
	data, err := io.ReadAll(io.LimitReader(f, smallFile+1))
	if err != nil {
		return Imported{}, fmt.Errorf("%s: read: %w", path, err)
	}
	if uint64(len(data)) != size {
		return Imported{}, fmt.Errorf("%s: %w", path, ErrChanged)
	}
	digest := store.Digest(bao.Sum(data))
	im := Imported{ID: store.ObjectID(digest[:store.IDSize]), Hash: digest, Size: size}
	if ok, err := st.Contains(ctx, im.ID); err == nil && ok {
		im.Existed = true
		return im, nil
	}
	if _, err := st.Put(ctx, data, nil); err != nil {
		return Imported{}, fmt.Errorf("%s: store: %w", path, err)
	}
	return im, nil
}

// hashMapped is the BLAKE3 hash of the file's first size bytes, read
// through a read-only mapping on every core.
func hashMapped(f *os.File, size uint64) (store.Digest, error) {
	mm, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return store.Digest{}, fmt.Errorf("map the file: %w", err)
	}
	defer syscall.Munmap(mm)
	return store.Digest(bao.Sum(mm)), nil
}

// openError is os.Open's error as one sentence (still errors.Is the
// fs error, without repeating its text).
func openError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return sentence{path + ": no such file on this node's machine", fs.ErrNotExist}
	case errors.Is(err, fs.ErrPermission):
		return sentence{path + ": permission denied: the stream server's user cannot read it", fs.ErrPermission}
	}
	return err
}

// sentence is an error that says msg and unwraps to cause.
type sentence struct {
	msg   string
	cause error
}

func (e sentence) Error() string { return e.msg }
func (e sentence) Unwrap() error { return e.cause }

// kind names what a file that is not a regular one is.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "file type " + m.Type().String()
}

// allowed checks path against the import directories (none: any path)
// and returns the path to open: with directories, path with its symbolic
// links resolved, the one that was checked.
func allowed(path string, dirs []string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%s: give an absolute path on the node's machine", path)
	}
	if len(dirs) == 0 {
		return path, nil
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", openError(path, err)
	}
	for _, d := range dirs {
		if rd, err := filepath.EvalSymlinks(d); err == nil && (real == rd || strings.HasPrefix(real, rd+string(filepath.Separator))) {
			return real, nil
		}
	}
	return "", fmt.Errorf("%s: %w (%s)", path, ErrNotAllowed, strings.Join(dirs, ", "))
}
