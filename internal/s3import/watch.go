package s3import

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/internal/wire"
	"github.com/plasmastream/plasmastream/store"
)

// Defaults of a watch.
const (
	DefaultInterval = 5 * time.Second
	// maxBackoff bounds the delay before a failed object is tried again.
	maxBackoff = 10 * time.Minute
	// saveEvery bounds how often the state file is rewritten while
	// objects arrive (it is also written after each poll and at the end):
	// a watch killed by SIGKILL imports at most this much again.
	saveEvery = time.Second
	// bigObject is the size from which an import is logged as it starts.
	bigObject = 64 << 20
)

// Config is a bucket watch.
type Config struct {
	Bucket, Prefix string
	Interval       time.Duration // between two listings (DefaultInterval)
	StatePath      string        // the state file (DefaultStatePath)
	// NewOnly: on the first run (no state file), record what the bucket
	// holds without importing it; import only what comes after.
	NewOnly bool
	Log     *slog.Logger
	// Imported is called for each object imported (printing it).
	Imported func(Imported)
	// Announce (nil: none) announces an imported object; a failure is
	// logged and retried on the next polls.
	Announce func(context.Context, Imported) error
	// Progress returns a progress display for one object (nil: none).
	Progress func() *cliutil.Progress
}

// DefaultStatePath is where a watch of bucket/prefix on the S3 service
// endpoint keeps its state without --state:
// $XDG_STATE_HOME/plasma/s3watch (else ~/.local/state/plasma/s3watch),
// one file per endpoint, bucket and prefix.
func DefaultStatePath(endpoint, bucket, prefix string) (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no state directory (%w): give --state FILE", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	sum := sha256.Sum256([]byte(endpoint + "\n" + bucket + "\n" + prefix))
	return filepath.Join(dir, "plasma", "s3watch", bucket+"-"+hex.EncodeToString(sum[:6])+".json"), nil
}

// failure is an object whose import failed, waiting for its next try.
type failure struct {
	etag     string
	attempts int
	next     time.Time
}

type watcher struct {
	cfg    Config
	st     *store.Client
	s3c    *minio.Client
	state  *State
	failed map[string]*failure
	dirty  bool
	saved  time.Time
}

// Watch polls cfg.Prefix of cfg.Bucket every cfg.Interval and imports
// into st each object that is new or whose ETag or size changed, until
// ctx ends (then it returns nil, the object in progress abandoned and
// the state saved). It returns an error only when it cannot go on: the
// state file cannot be read or written, or the store is gone
// (ErrStoreUnavailable).
func Watch(ctx context.Context, cfg Config, st *store.Client, s3c *minio.Client) error {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	state, err := LoadState(cfg.StatePath)
	if err != nil {
		return err
	}
	skip := false
	switch {
	case state == nil:
		state, skip = NewState(cfg.Bucket, cfg.Prefix), cfg.NewOnly
	case state.Bucket != cfg.Bucket || state.Prefix != cfg.Prefix:
		return fmt.Errorf("state file %s is the watch of s3://%s/%s, not of s3://%s/%s: give another --state", cfg.StatePath, state.Bucket, state.Prefix, cfg.Bucket, cfg.Prefix)
	}
	w := &watcher{cfg: cfg, st: st, s3c: s3c, state: state, failed: map[string]*failure{}}
	cfg.Log.Info("watching", "bucket", cfg.Bucket, "prefix", cfg.Prefix, "interval", cfg.Interval, "state", cfg.StatePath, "known", len(state.Objects))
	if err := w.save(); err != nil { // fail now, not after the first import, if it cannot be written
		return err
	}
	listFailures := 0
	for {
		listed, err := w.poll(ctx, skip)
		if errors.Is(err, ErrStoreUnavailable) {
			w.save()
			return fmt.Errorf("the watch stops: the store at %s is gone (%w); start it and run the watch again: %s keeps what was imported", st.Socket(), err, cfg.StatePath)
		}
		delay := cfg.Interval
		switch {
		case listed:
			if skip {
				cfg.Log.Info("new-only: what the prefix holds now is recorded, not imported", "bucket", cfg.Bucket, "prefix", cfg.Prefix, "objects", len(state.Objects))
			}
			skip, listFailures = false, 0
		case ctx.Err() == nil:
			listFailures++
			delay = backoff(cfg.Interval, listFailures)
			cfg.Log.Warn("cannot list the bucket; the watch goes on", "bucket", cfg.Bucket, "prefix", cfg.Prefix, "err", err,
				"retry_in", delay, "hint", "check that the S3 service is up and the credentials allow ListObjects")
		}
		if err := w.save(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			cfg.Log.Info("watch stopped", "bucket", cfg.Bucket, "prefix", cfg.Prefix)
			return nil
		case <-time.After(delay):
		}
	}
}

// backoff is the delay after n failures in a row: the interval doubled
// n-1 times, at most maxBackoff.
func backoff(interval time.Duration, n int) time.Duration {
	d := interval
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, max(maxBackoff, interval))
}

// poll lists the prefix and deals with each object: it reports whether
// the listing was complete, and fails only with ErrStoreUnavailable or
// the listing's error.
func (w *watcher) poll(ctx context.Context, skip bool) (bool, error) {
	var objs []minio.ObjectInfo
	for o := range w.s3c.ListObjects(ctx, w.cfg.Bucket, minio.ListObjectsOptions{Prefix: w.cfg.Prefix, Recursive: true}) {
		if o.Err != nil {
			return false, o.Err
		}
		if !strings.HasSuffix(o.Key, "/") { // a "directory" marker holds nothing
			objs = append(objs, o)
		}
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	present := make(map[string]bool, len(objs))
	for _, o := range objs {
		present[o.Key] = true
		if err := w.object(ctx, o, skip); err != nil {
			return false, err
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
	// Forget what was deleted from the bucket: the state does not grow
	// for ever, and a key that comes back is new.
	for k := range w.state.Objects {
		if !present[k] {
			delete(w.state.Objects, k)
			w.dirty = true
		}
	}
	for k := range w.failed {
		if !present[k] {
			delete(w.failed, k)
		}
	}
	return true, nil
}

// object deals with one listed object: nothing if this version was seen,
// else import it (or, with skip, only record it).
func (w *watcher) object(ctx context.Context, o minio.ObjectInfo, skip bool) error {
	log := w.cfg.Log.With("bucket", w.cfg.Bucket, "key", o.Key)
	if seen, ok := w.state.Objects[o.Key]; ok && seen.ETag == o.ETag && seen.Size == uint64(o.Size) {
		if seen.Unannounced {
			h := mustDigest(seen.Hash)
			w.announce(ctx, log, Imported{ID: store.ObjectID(h[:store.IDSize]), Hash: h, Bucket: w.cfg.Bucket, Key: o.Key, Size: seen.Size, ETag: seen.ETag})
		}
		return nil
	}
	if skip {
		w.record(o.Key, Seen{ETag: o.ETag, Size: uint64(o.Size)})
		return nil
	}
	f := w.failed[o.Key]
	if f != nil && f.etag == o.ETag && time.Now().Before(f.next) {
		return nil
	}
	if o.Size >= bigObject {
		log.Info("importing", "size", cliutil.FormatSize(uint64(o.Size)))
	}
	var progress *cliutil.Progress
	if w.cfg.Progress != nil {
		progress = w.cfg.Progress()
	}
	start := time.Now()
	im, err := Import(ctx, w.st, w.s3c, w.cfg.Bucket, o.Key, progress)
	progress.Done()
	switch {
	case err != nil && ctx.Err() != nil:
		log.Info("import abandoned: the watch is stopping; nothing was stored")
		return nil
	case errors.Is(err, ErrStoreUnavailable):
		return err
	case err != nil:
		if f == nil || f.etag != o.ETag {
			f = &failure{etag: o.ETag}
			w.failed[o.Key] = f
		}
		f.attempts++
		delay := backoff(w.cfg.Interval, f.attempts)
		f.next = time.Now().Add(delay)
		log.Warn("import failed; nothing was stored, the watch goes on", "err", err, "attempt", f.attempts, "retry_in", delay, "hint", hint(err))
		return nil
	}
	delete(w.failed, o.Key)
	log.Info("imported", "id", im.ID, "size", im.Size, "existed", im.Existed, "seconds", time.Since(start).Seconds())
	w.record(o.Key, Seen{ETag: im.ETag, Size: im.Size, Hash: im.Hash.String()})
	w.cfg.Imported(im)
	w.announce(ctx, log, im)
	if time.Since(w.saved) >= saveEvery {
		return w.save()
	}
	return nil
}

// announce announces im, or marks it to be announced on a later poll.
func (w *watcher) announce(ctx context.Context, log *slog.Logger, im Imported) {
	if w.cfg.Announce == nil {
		return
	}
	err := w.cfg.Announce(ctx, im)
	seen := w.state.Objects[im.Key]
	if err != nil && ctx.Err() == nil {
		log.Warn("imported but not announced; retried on the next poll", "id", im.ID, "err", err)
	}
	if (err != nil) != seen.Unannounced {
		seen.Unannounced = err != nil
		w.record(im.Key, seen)
	}
}

func (w *watcher) record(key string, s Seen) {
	w.state.Objects[key] = s
	w.dirty = true
}

// save writes the state file if it changed.
func (w *watcher) save() error {
	if !w.dirty && !w.saved.IsZero() {
		return nil
	}
	if err := SaveState(w.cfg.StatePath, w.state); err != nil {
		return fmt.Errorf("%w: the watch cannot remember what it imported; give a --state FILE in a writable directory", err)
	}
	w.dirty, w.saved = false, time.Now()
	return nil
}

// hint says what to do about a failed import.
func hint(err error) string {
	var resp minio.ErrorResponse
	errors.As(err, &resp)
	code := resp.Code
	switch {
	case errors.Is(err, store.ErrOutOfMemory), errors.Is(err, store.ErrTooLarge):
		return "make room in the store (plasma evict, plasma rm) or give it more memory (-m); an import needs twice the object's size free for a moment"
	case errors.Is(err, store.ErrBusy):
		return "the store is busy; the import is retried"
	case code == minio.NoSuchKey:
		return "the object was deleted while it was read; it is imported if it comes back"
	case code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch":
		return "check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or the AWS credentials file) and that they allow GetObject"
	}
	return "check the S3 service; the import is retried"
}

// mustDigest parses a hash the state decoder has checked.
func mustDigest(s string) store.Digest {
	h, _ := wire.ParseDigest(s)
	return h
}
