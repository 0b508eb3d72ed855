package plasmacmd

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/internal/bao"
	"github.com/plasmastream/plasmastream/internal/coldtier"
	"github.com/plasmastream/plasmastream/store"
)

// importS3 stores the S3 object at src under its content address. The
// bytes go from the network into a scratch object in shared memory (the
// id is known only once they are hashed), then are copied into the
// object named by their hash, which is sealed with its digest; the
// scratch object is aborted. Nothing is held whole in the heap.
func (o *options) importS3(cmd *cobra.Command, cfg coldtier.Config, src string) error {
	u, err := url.Parse(src)
	if err != nil || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("%s: want s3://BUCKET/KEY", src)
	}
	bucket, key := u.Host, strings.TrimPrefix(u.Path, "/")
	s3c, err := coldtier.NewS3Client(cfg)
	if err != nil {
		return err
	}
	return o.withClient(func(ctx context.Context, c *store.Client) error {
		obj, err := s3c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
		if err != nil {
			return fmt.Errorf("import %s: %w", src, err)
		}
		defer obj.Close()
		st, err := obj.Stat()
		if err != nil {
			return fmt.Errorf("import %s: %w", src, err)
		}
		scratch := store.RandomObjectID()
		buf, err := c.Create(ctx, scratch, uint64(st.Size), nil)
		if err != nil {
			return fmt.Errorf("import %s (%d bytes): %w", src, st.Size, err)
		}
		defer c.Abort(context.Background(), scratch)
		if _, err := io.ReadFull(obj, buf); err != nil {
			return fmt.Errorf("import %s: read: %w", src, err)
		}
		digest := store.Digest(bao.Sum(buf))
		id := store.ObjectID(digest[:store.IDSize])
		dst, err := c.Create(ctx, id, uint64(len(buf)), nil)
		switch {
		case errors.Is(err, store.ErrObjectExists): // the same bytes are stored already
		case err != nil:
			return fmt.Errorf("import %s: %w", src, err)
		default:
			copy(dst, buf)
			if err := c.SealDigest(ctx, id, digest); err != nil {
				c.Abort(context.Background(), id)
				return err
			}
			if err := c.Release(ctx, id); err != nil {
				return err
			}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", id, hex.EncodeToString(digest[:]))
		return nil
	})
}
