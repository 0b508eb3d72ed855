package coldtier

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/plasmastream/plasmastream/internal/fsutil"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// dirTier is a cold tier in a local directory.
type dirTier struct{ root string }

func openDir(root string) (*dirTier, error) {
	for _, d := range []string{"blobs", recordsDir, "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("cold tier file://%s: %w", root, err)
		}
	}
	return &dirTier{root: root}, nil
}

func (t *dirTier) String() string { return "file://" + t.root }

// Readers: one sequential reader, which the kernel reads ahead of, beat
// several at scattered offsets on a virtual disk (see storeserver's
// readVerified).
func (t *dirTier) Readers() int { return 1 }

func (t *dirTier) path(k string) string { return filepath.Join(t.root, filepath.FromSlash(k)) }

func (t *dirTier) HasBlob(_ context.Context, d wire.Digest, size uint64) (bool, error) {
	st, err := os.Stat(t.path(blobKey(d)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(t.path(outboardKey(d))); err != nil {
		return false, nil
	}
	return uint64(st.Size()) == size, nil
}

func (t *dirTier) PutBlob(ctx context.Context, d wire.Digest, data, outboard []byte) error {
	if err := t.writeFile(ctx, outboardKey(d), outboard); err != nil {
		return err
	}
	return t.writeFile(ctx, blobKey(d), data)
}

func (t *dirTier) PutRecord(ctx context.Context, r Record) error {
	return t.writeFile(ctx, recordKey(r.ID), r.Marshal())
}

// writeChunk bounds each write so that a cancelled context stops a large
// file within one chunk.
const writeChunk = 8 << 20

// writeFile makes key hold data. The file appears whole or not at all: it
// is written to a temporary file, synced, renamed into place, and the
// directory synced, so a crash at any point leaves the old state or the
// new one.
func (t *dirTier) writeFile(ctx context.Context, key string, data []byte) (err error) {
	tmp, err := os.CreateTemp(t.path("tmp"), "write-*")
	if err != nil {
		return err
	}
	defer func() {
		tmp.Close()
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	for off := 0; off < len(data); off += writeChunk {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write %s: %w", key, err)
		}
		if _, err := tmp.Write(data[off:min(off+writeChunk, len(data))]); err != nil {
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	dst := t.path(key)
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	return fsutil.SyncDir(filepath.Dir(dst))
}

func (t *dirTier) GetRecord(_ context.Context, id wire.ID) (Record, error) {
	b, err := os.ReadFile(t.path(recordKey(id)))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, fmt.Errorf("record of %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Record{}, err
	}
	return checkedRecord(b, id)
}

// checkedRecord decodes the record stored under id's key.
func checkedRecord(b []byte, id wire.ID) (Record, error) {
	r, err := UnmarshalRecord(b)
	if err == nil && r.ID != id {
		err = fmt.Errorf("%w: the record stored for %s names %s", ErrBadRecord, id, r.ID)
	}
	return r, err
}

func (t *dirTier) ReadOutboard(_ context.Context, d wire.Digest) ([]byte, error) {
	b, err := os.ReadFile(t.path(outboardKey(d)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("outboard of %s: %w", d, ErrNotFound)
	}
	return b, err
}

// OpenBlob opens d's data file once for the whole restore: the kernel
// keeps one readahead window per open file, which a file opened again
// for each chunk would start over.
func (t *dirTier) OpenBlob(_ context.Context, d wire.Digest) (Blob, error) {
	f, err := os.Open(t.path(blobKey(d)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("data of %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL) // a hint: its failure changes only the speed
	return &fileBlob{f: f, d: d}, nil
}

// fileBlob is a blob of a file:// tier.
type fileBlob struct {
	f *os.File
	d wire.Digest
}

// ReadAt reads p's bytes, first asking the kernel to read the same
// number of bytes after them into the page cache: the disk works on the
// next chunk while this one is copied and verified, so a restore keeps
// more requests in flight than a plain sequential read.
func (b *fileBlob) ReadAt(ctx context.Context, p []byte, off uint64) error {
	unix.Fadvise(int(b.f.Fd()), int64(off)+int64(len(p)), int64(len(p)), unix.FADV_WILLNEED) // a hint, as above
	for len(p) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := b.f.ReadAt(p[:min(len(p), writeChunk)], int64(off))
		if err != nil {
			return fmt.Errorf("read data of %s at %d: %w (the file is shorter than its record says)", b.d, off, err)
		}
		p, off = p[n:], off+uint64(n)
	}
	return nil
}

func (b *fileBlob) Close() error { return b.f.Close() }

func (t *dirTier) DeleteRecord(_ context.Context, id wire.ID) error { return t.remove(recordKey(id)) }

func (t *dirTier) DeleteBlob(_ context.Context, d wire.Digest) error {
	if err := t.remove(blobKey(d)); err != nil {
		return err
	}
	return t.remove(outboardKey(d))
}

func (t *dirTier) remove(key string) error {
	if err := os.Remove(t.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (t *dirTier) Records(ctx context.Context) ([]Record, []error, error) {
	ents, err := os.ReadDir(t.path(recordsDir))
	if err != nil {
		return nil, nil, err
	}
	var recs []Record
	var bad []error
	for _, e := range ents {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if !strings.HasSuffix(e.Name(), recordSuffix) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(t.path(recordsDir), e.Name()))
		if err == nil {
			var r Record
			if r, err = UnmarshalRecord(b); err == nil {
				recs = append(recs, r)
				continue
			}
		}
		bad = append(bad, fmt.Errorf("%s/%s/%s: %w", t, recordsDir, e.Name(), err))
	}
	return recs, bad, nil
}
