package storeserver_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/plasmastream/plasmastream/internal/coldtier"
	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/internal/testutil"
)

// An upload cut by the S3 server's death is resumed, not restarted, by
// the next persist: the store kept its upload id, so once it succeeds no
// incomplete upload is left behind (a restarted one would leave the first).
func TestColdUploadResumesAfterCut(t *testing.T) {
	s3 := testutil.StartS3(t)
	s := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 128 << 20,
		Cold: coldtier.Config{URL: s3.URL("resume"), PartSize: 5 << 20, Concurrency: 1}, ColdTimeout: time.Minute})
	c := testutil.StoreClient(t, s.Socket)
	ctx := context.Background()
	data := testutil.Pattern(80<<20, 14)
	id, err := c.Put(ctx, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Outboard(ctx, id); err != nil { // hashed before the upload starts
		t.Fatal(err)
	}
	plain := minio.Core{Client: s3.Client()}
	persisted := make(chan error, 1)
	go func() { persisted <- c.Persist(ctx, id) }()
	waitFor(t, "a part to be uploaded", func() bool {
		ups, err := plain.ListMultipartUploads(ctx, s3.Bucket, "resume/", "", "", "", 10)
		if err != nil || len(ups.Uploads) == 0 {
			return false
		}
		parts, err := plain.ListObjectParts(ctx, s3.Bucket, ups.Uploads[0].Key, ups.Uploads[0].UploadID, 0, 100)
		return err == nil && len(parts.ObjectParts) > 0
	})
	s3.Stop()
	if err := <-persisted; err == nil {
		t.Fatal("persist cut by the server's death succeeded")
	}
	s3.Start()
	if err := c.Persist(ctx, id); err != nil {
		t.Fatalf("persist after the server came back: %v", err)
	}
	ups, err := plain.ListMultipartUploads(ctx, s3.Bucket, "resume/", "", "", "", 10)
	if err != nil || len(ups.Uploads) != 0 {
		t.Fatalf("incomplete uploads left: %+v (%v), want none: the second persist started a new upload", ups.Uploads, err)
	}
	if _, err := c.Evict(ctx, 128<<20); err != nil {
		t.Fatal(err)
	}
	got, _, err := getBytes(ctx, c, id)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("restore of the resumed upload: %v", err)
	}
}
