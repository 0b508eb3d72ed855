package coldtier

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/plasmastream/plasmastream/internal/wire"
)

// Tier is one cold tier. Its methods may be called concurrently; every
// one that does I/O takes a context, and the caller bounds it.
type Tier interface {
	// HasBlob reports whether the data of digest, size bytes, and its
	// outboard are complete in the tier.
	HasBlob(ctx context.Context, d wire.Digest, size uint64) (bool, error)
	// PutBlob writes data (read from the store's shared memory, never
	// copied whole into the heap) and its outboard under d.
	PutBlob(ctx context.Context, d wire.Digest, data, outboard []byte) error
	// ReadOutboard returns the outboard stored beside d's data.
	ReadOutboard(ctx context.Context, d wire.Digest) ([]byte, error)
	// OpenBlob opens d's data for ranged reads.
	OpenBlob(ctx context.Context, d wire.Digest) (Blob, error)
	// Readers is how many ReadAt calls of one Blob suit the medium at
	// once.
	Readers() int
	PutRecord(ctx context.Context, r Record) error
	// GetRecord reads id's record; ErrNotFound if the tier has none.
	GetRecord(ctx context.Context, id wire.ID) (Record, error)
	DeleteRecord(ctx context.Context, id wire.ID) error
	DeleteBlob(ctx context.Context, d wire.Digest) error
	// Records lists every record; bad ones are returned as errors beside
	// the good ones (one damaged file does not hide the others).
	Records(ctx context.Context) ([]Record, []error, error)
	// String is the tier's URL, without credentials.
	String() string
}

// Blob is the data of one object, open for ranged reads; ReadAt may be
// called concurrently. Close it when done.
type Blob interface {
	// ReadAt fills p with the data from byte off.
	ReadAt(ctx context.Context, p []byte, off uint64) error
	Close() error
}

// ErrNotFound is wrapped when the tier does not hold what was asked for.
var ErrNotFound = errors.New("not in the cold tier")

// Config is how to reach a tier. Credentials are never part of it: an S3
// tier reads them from the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or the AWS credentials file
// (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE).
type Config struct {
	// URL is file:///dir or s3://bucket/prefix.
	URL string
	// Endpoint is the S3 service, host[:port] or http(s)://host[:port]:
	// "" reads AWS_ENDPOINT_URL, else AWS S3 itself.
	Endpoint string
	// Region: "" reads AWS_REGION or AWS_DEFAULT_REGION.
	Region string
	// NoTLS talks plain HTTP (an endpoint given as http:// does too).
	NoTLS bool
	// PartSize is the size of each part of a multipart upload and of each
	// ranged read. 0: DefaultPartSize.
	PartSize uint64
	// Concurrency is the parts moved at once per object. 0:
	// DefaultConcurrency.
	Concurrency int
}

// Defaults of a tier.
const (
	// DefaultPartSize: 16 MiB parts keep an upload's buffers small (the
	// S3 client's own default is about 0.5 GiB a part) and a 1 GiB object
	// in 64 parts, well within S3's 10,000.
	DefaultPartSize    = 16 << 20
	DefaultConcurrency = 4
	minPartSize        = 5 << 20 // S3's smallest part but the last
)

// SetDefaults fills the zero fields that have defaults.
func (c *Config) SetDefaults() {
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
}

// Open opens the tier named by cfg.URL: a directory is created if
// missing; an S3 bucket must exist.
func Open(ctx context.Context, cfg Config) (Tier, error) {
	cfg.SetDefaults()
	if cfg.PartSize < minPartSize {
		return nil, fmt.Errorf("cold tier part size %d: S3 needs parts of at least %d bytes", cfg.PartSize, minPartSize)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("cold tier %q: %w", cfg.URL, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("cold tier %q: a file URL names a local directory: file:///path (three slashes)", cfg.URL)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("cold tier %q: give a directory, e.g. file:///var/lib/plasma/cold", cfg.URL)
		}
		return openDir(u.Path)
	case "s3":
		if u.Host == "" {
			return nil, fmt.Errorf("cold tier %q: give a bucket, e.g. s3://bucket/prefix", cfg.URL)
		}
		return openS3(ctx, cfg, u.Host, strings.Trim(u.Path, "/"))
	}
	return nil, fmt.Errorf("cold tier %q: want file:///dir or s3://bucket/prefix", cfg.URL)
}

// Key names, relative to the tier's root.
func blobKey(d wire.Digest) string     { return path.Join("blobs", hex.EncodeToString(d[:])) }
func outboardKey(d wire.Digest) string { return blobKey(d) + ".obao" }
func recordKey(id wire.ID) string      { return path.Join("objects", id.String()+".rec") }

const recordsDir, recordSuffix = "objects", ".rec"
