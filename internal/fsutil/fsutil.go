// Package fsutil holds the file-system steps that make a write durable
// and all-or-nothing, shared by everything that keeps files (key files,
// the cold tier's directory, state files, the state streamer's files).
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// SyncDir makes a rename, link or removal in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// WriteFileAtomic replaces path with data (mode 0600, from
// os.CreateTemp): written to a temporary file beside it, synced, renamed
// over it, and the directory synced. A crash at any point leaves the old
// file or the new one, never a part.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(dir)
}
