package coldtier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/sync/errgroup"

	"github.com/plasmastream/plasmastream/internal/wire"
)

// s3Tier is a cold tier in an S3 bucket, under a prefix.
type s3Tier struct {
	c                      minio.Core
	bucket, prefix, scheme string
	partSize               uint64
	concurrency            int

	mu sync.Mutex
	// uploads keeps the id of every multipart upload cut short, so that
	// the next attempt sends only the parts the service does not have.
	uploads map[wire.Digest]string
}

// NewS3Client is the S3 client of a tier or of `plasma import`: the
// endpoint, region and TLS from cfg or the environment, the credentials
// from the environment or the AWS credentials file only.
func NewS3Client(cfg Config) (*minio.Client, error) {
	endpoint, secure := cfg.Endpoint, !cfg.NoTLS
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	if endpoint == "" {
		endpoint = "s3.amazonaws.com"
	}
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("S3 endpoint %q: want host[:port] or http(s)://host[:port]", endpoint)
		}
		endpoint, secure = u.Host, secure && u.Scheme == "https"
	}
	region := cfg.Region
	for _, env := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if region == "" {
			region = os.Getenv(env)
		}
	}
	lookup := minio.BucketLookupAuto
	if endpoint != "s3.amazonaws.com" {
		lookup = minio.BucketLookupPath // S3-compatible services rarely have bucket DNS names
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}})
	return minio.New(endpoint, &minio.Options{Creds: creds, Secure: secure, Region: region, BucketLookup: lookup, MaxRetries: 3})
}

func openS3(ctx context.Context, cfg Config, bucket, prefix string) (*s3Tier, error) {
	c, err := NewS3Client(cfg)
	if err != nil {
		return nil, err
	}
	t := &s3Tier{c: minio.Core{Client: c}, bucket: bucket, prefix: prefix, partSize: cfg.PartSize,
		concurrency: cfg.Concurrency, uploads: map[wire.Digest]string{}}
	ok, err := c.BucketExists(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("cold tier %s: %w", t, err)
	}
	if !ok {
		return nil, fmt.Errorf("cold tier %s: bucket %q does not exist; create it first", t, bucket)
	}
	return t, nil
}

func (t *s3Tier) String() string {
	if t.prefix == "" {
		return "s3://" + t.bucket
	}
	return "s3://" + t.bucket + "/" + t.prefix
}

func (t *s3Tier) key(k string) string { return path.Join(t.prefix, k) }

// Readers: ranged GETs in parallel hide each request's latency.
func (t *s3Tier) Readers() int { return t.concurrency }

func notFound(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == minio.NoSuchKey || code == "NotFound"
}

func (t *s3Tier) HasBlob(ctx context.Context, d wire.Digest, size uint64) (bool, error) {
	st, err := t.c.StatObject(ctx, t.bucket, t.key(blobKey(d)), minio.StatObjectOptions{})
	if notFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", t, err)
	}
	if _, err := t.c.StatObject(ctx, t.bucket, t.key(outboardKey(d)), minio.StatObjectOptions{}); err != nil {
		return false, nil
	}
	return uint64(st.Size) == size, nil
}

func (t *s3Tier) putSmall(ctx context.Context, key string, b []byte) error {
	_, err := t.c.PutObject(ctx, t.bucket, t.key(key), bytes.NewReader(b), int64(len(b)), "", "", minio.PutObjectOptions{})
	if err != nil {
		return fmt.Errorf("%s: put %s: %w", t, key, err)
	}
	return nil
}

func (t *s3Tier) PutBlob(ctx context.Context, d wire.Digest, data, outboard []byte) error {
	if err := t.putSmall(ctx, outboardKey(d), outboard); err != nil {
		return err
	}
	if uint64(len(data)) <= t.partSize {
		return t.putSmall(ctx, blobKey(d), data)
	}
	return t.putMultipart(ctx, d, data)
}

// putMultipart uploads data in parts of partSize, concurrency at a time,
// each read straight from data (the store's shared memory). An upload
// cut short is resumed by the next call for the same digest: the parts
// the service already holds are not sent again.
func (t *s3Tier) putMultipart(ctx context.Context, d wire.Digest, data []byte) error {
	key := t.key(blobKey(d))
	nparts := int((uint64(len(data)) + t.partSize - 1) / t.partSize)
	parts := make([]minio.CompletePart, nparts)
	t.mu.Lock()
	uploadID := t.uploads[d]
	t.mu.Unlock()
	if uploadID != "" {
		t.resumed(ctx, key, uploadID, parts)
	}
	if uploadID == "" || parts[0].PartNumber < 0 {
		id, err := t.c.NewMultipartUpload(ctx, t.bucket, key, minio.PutObjectOptions{})
		if err != nil {
			return fmt.Errorf("%s: start upload of %s: %w", t, key, err)
		}
		uploadID = id
		clear(parts)
		t.mu.Lock()
		t.uploads[d] = id
		t.mu.Unlock()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(t.concurrency)
	for i := range parts {
		if parts[i].ETag != "" {
			continue
		}
		off := uint64(i) * t.partSize
		n := min(t.partSize, uint64(len(data))-off)
		g.Go(func() error {
			p, err := t.c.PutObjectPart(gctx, t.bucket, key, uploadID, i+1,
				bytes.NewReader(data[off:off+n]), int64(n), minio.PutObjectPartOptions{})
			if err != nil {
				return fmt.Errorf("%s: upload part %d of %d of %s: %w", t, i+1, nparts, key, err)
			}
			parts[i] = minio.CompletePart{PartNumber: i + 1, ETag: p.ETag}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err // the upload id is kept: the next attempt resumes
	}
	if _, err := t.c.CompleteMultipartUpload(ctx, t.bucket, key, uploadID, parts, minio.PutObjectOptions{}); err != nil {
		return fmt.Errorf("%s: complete upload of %s: %w", t, key, err)
	}
	t.mu.Lock()
	delete(t.uploads, d)
	t.mu.Unlock()
	return nil
}

// resumed fills parts with those of uploadID the service holds at their
// full size. If the upload is gone it marks parts[0].PartNumber -1: start
// a new one.
func (t *s3Tier) resumed(ctx context.Context, key, uploadID string, parts []minio.CompletePart) {
	marker := 0
	for {
		res, err := t.c.ListObjectParts(ctx, t.bucket, key, uploadID, marker, 1000)
		if err != nil {
			parts[0].PartNumber = -1
			return
		}
		for _, p := range res.ObjectParts {
			if i := p.PartNumber - 1; i >= 0 && i < len(parts) && (uint64(p.Size) == t.partSize || i == len(parts)-1) {
				parts[i] = minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag}
			}
		}
		if !res.IsTruncated {
			return
		}
		marker = res.NextPartNumberMarker
	}
}

func (t *s3Tier) PutRecord(ctx context.Context, r Record) error {
	return t.putSmall(ctx, recordKey(r.ID), r.Marshal())
}

func (t *s3Tier) GetRecord(ctx context.Context, id wire.ID) (Record, error) {
	b, err := t.readAll(ctx, recordKey(id), recordHeader+MaxMetadata)
	if err != nil {
		return Record{}, err
	}
	return checkedRecord(b, id)
}

func (t *s3Tier) readAll(ctx context.Context, key string, limit int64) ([]byte, error) {
	obj, _, _, err := t.c.GetObject(ctx, t.bucket, t.key(key), minio.GetObjectOptions{})
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("%s/%s: %w", t, key, ErrNotFound)
		}
		return nil, fmt.Errorf("%s: get %s: %w", t, key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(io.LimitReader(obj, limit+1))
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("%s/%s: %w", t, key, ErrNotFound)
		}
		return nil, fmt.Errorf("%s: read %s: %w", t, key, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s/%s: more than %d bytes", t, key, limit)
	}
	return b, nil
}

// maxOutboard bounds an outboard read: 64 bytes per 16 KiB of a 1 TiB
// object.
const maxOutboard = 8 + 64<<26

func (t *s3Tier) ReadOutboard(ctx context.Context, d wire.Digest) ([]byte, error) {
	return t.readAll(ctx, outboardKey(d), maxOutboard)
}

// OpenBlob opens nothing yet: each ReadAt is one ranged GET.
func (t *s3Tier) OpenBlob(_ context.Context, d wire.Digest) (Blob, error) { return s3Blob{t, d}, nil }

type s3Blob struct {
	t *s3Tier
	d wire.Digest
}

func (b s3Blob) Close() error { return nil }

func (b s3Blob) ReadAt(ctx context.Context, p []byte, off uint64) error {
	t, key := b.t, blobKey(b.d)
	var opts minio.GetObjectOptions
	if err := opts.SetRange(int64(off), int64(off)+int64(len(p))-1); err != nil {
		return err
	}
	obj, _, _, err := t.c.GetObject(ctx, t.bucket, t.key(key), opts)
	if err != nil {
		if notFound(err) {
			return fmt.Errorf("%s/%s: %w", t, key, ErrNotFound)
		}
		return fmt.Errorf("%s: get %s: %w", t, key, err)
	}
	defer obj.Close()
	if _, err := io.ReadFull(obj, p); err != nil {
		if notFound(err) {
			return fmt.Errorf("%s/%s: %w", t, key, ErrNotFound)
		}
		return fmt.Errorf("%s: read %s at %d: %w", t, key, off, err)
	}
	return nil
}

func (t *s3Tier) remove(ctx context.Context, key string) error {
	err := t.c.RemoveObject(ctx, t.bucket, t.key(key), minio.RemoveObjectOptions{})
	if err != nil && !notFound(err) {
		return fmt.Errorf("%s: delete %s: %w", t, key, err)
	}
	return nil
}

func (t *s3Tier) DeleteRecord(ctx context.Context, id wire.ID) error {
	return t.remove(ctx, recordKey(id))
}

func (t *s3Tier) DeleteBlob(ctx context.Context, d wire.Digest) error {
	return errors.Join(t.remove(ctx, blobKey(d)), t.remove(ctx, outboardKey(d)))
}

func (t *s3Tier) Records(ctx context.Context) ([]Record, []error, error) {
	var recs []Record
	var bad []error
	opts := minio.ListObjectsOptions{Prefix: t.key(recordsDir) + "/", Recursive: true}
	for info := range t.c.Client.ListObjects(ctx, t.bucket, opts) {
		if info.Err != nil {
			return nil, nil, fmt.Errorf("%s: list records: %w", t, info.Err)
		}
		if !strings.HasSuffix(info.Key, recordSuffix) {
			continue
		}
		k := strings.TrimPrefix(strings.TrimPrefix(info.Key, t.prefix), "/")
		b, err := t.readAll(ctx, k, recordHeader+MaxMetadata)
		if err == nil {
			var r Record
			if r, err = UnmarshalRecord(b); err == nil {
				recs = append(recs, r)
				continue
			}
		}
		bad = append(bad, fmt.Errorf("%s/%s: %w", t, k, err))
	}
	return recs, bad, nil
}
