package plasmacmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/store"
)

func (o *options) putCmd() *cobra.Command {
	var idHex, meta, metaFile, group string
	var wait, persist bool
	cmd := &cobra.Command{
		Use:   "put [--id HEX40] [--persist] [--metadata STRING | --metadata-file FILE] [--prefetch-group G [--wait]] FILE|-",
		Short: "Store a file (or stdin) as a sealed object and print its id",
		Long: `Store a file (or stdin, "-") as a sealed object and print its id alone.

Without --id the id is the content address: the first 20 bytes of the
BLAKE3 hash of the data, so the same bytes always get the same id, and
putting them again succeeds and prints the same id.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if meta != "" && metaFile != "" {
				return errors.New("give --metadata or --metadata-file, not both")
			}
			metadata := []byte(meta)
			if metaFile != "" {
				var err error
				if metadata, err = os.ReadFile(metaFile); err != nil {
					return err
				}
			}
			if len(metadata) > store.MaxMetadata {
				return fmt.Errorf("metadata is %d bytes; at most %d are allowed", len(metadata), store.MaxMetadata)
			}
			data, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			return o.withClient(func(ctx context.Context, c *store.Client) error {
				var id store.ObjectID
				if idHex == "" {
					id, err = c.Put(ctx, data, metadata)
				} else if id, err = store.ParseObjectID(idHex); err == nil {
					err = c.PutID(ctx, id, data, metadata)
				}
				if err != nil {
					return err
				}
				if persist {
					if err := c.Persist(ctx, id); err != nil {
						return fmt.Errorf("%w (the object %s is stored, in memory only)", err, id)
					}
				}
				fmt.Fprintln(cmd.OutOrStdout(), id)
				if group == "" {
					return nil
				}
				return o.prefetch(cmd, id, group, wait)
			})
		},
	}
	cmd.Flags().StringVar(&group, "prefetch-group", "", "then spread the object to every node of this group (through the stream server at -a)")
	cmd.Flags().BoolVar(&wait, "wait", false, "with --prefetch-group: wait for the outcome, print it on stderr, fail if any node failed")
	cmd.Flags().StringVar(&idHex, "id", "", "object id, 40 hex digits (default: content address)")
	cmd.Flags().BoolVar(&persist, "persist", false, "also write it to the store's cold tier now, so that it survives the store's restart")
	cmd.Flags().StringVar(&meta, "metadata", "", "metadata to store with the object")
	cmd.Flags().StringVar(&metaFile, "metadata-file", "", "file whose content is the metadata")
	return cmd
}

// readInput reads a file (or stdin, "-"), with a progress bar on a
// terminal when that takes a while.
func readInput(cmd *cobra.Command, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(cmd.InOrStdin())
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	bar := cliutil.TerminalProgress()
	defer bar.Done()
	b := make([]byte, 0, st.Size()+1)
	r := bar.Reader(f, st.Size(), "reading "+name)
	for {
		// 8 MiB at a time, so that the bar moves.
		n, err := r.Read(b[len(b):min(cap(b), len(b)+8<<20)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) { // the file grew
			b = append(b, 0)[:len(b)]
		}
	}
}

func (o *options) getCmd() *cobra.Command {
	var timeoutMs int64
	var metadata, local, verify bool
	var output string
	cmd := &cobra.Command{
		Use:   "get [--timeout MS] [--metadata] [--verify] [-o FILE] ID",
		Short: "Write an object's data (or metadata) to stdout or a file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := store.ParseObjectID(args[0])
			if err != nil {
				return err
			}
			return o.withClient(func(ctx context.Context, c *store.Client) error {
				obj, err := c.GetOne(ctx, id, time.Duration(timeoutMs)*time.Millisecond)
				if errors.Is(err, store.ErrObjectNotFound) {
					err = fmt.Errorf("object %s is not in the store at %s (waited %d ms)", id, o.socket, max(timeoutMs, 0))
					if !local {
						obj, err = o.fetch(ctx, c, id, err)
					}
				}
				if err != nil {
					return err
				}
				defer c.Release(ctx, id)
				if verify {
					if err := c.Verify(ctx, obj); err != nil {
						return err
					}
				}
				b := obj.Data
				if metadata {
					b = obj.Metadata
				}
				return writeOutput(cmd, output, b)
			})
		},
	}
	cmd.Flags().Int64Var(&timeoutMs, "timeout", 0, "milliseconds to wait for the object to be sealed (-1: forever)")
	cmd.Flags().BoolVar(&local, "local", false, "do not fall back to the cluster on a local miss")
	cmd.Flags().BoolVar(&metadata, "metadata", false, "write the metadata instead of the data")
	cmd.Flags().BoolVar(&verify, "verify", false, "check the data against its BLAKE3 digest first and fail if another client of the store has overwritten it")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to FILE instead of stdout")
	return cmd
}

func writeOutput(cmd *cobra.Command, path string, b []byte) error {
	if path == "" {
		_, err := cmd.OutOrStdout().Write(b)
		return err
	}
	// Written beside the target and renamed, so FILE is never half written.
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	bar := cliutil.TerminalProgress()
	_, err = io.CopyBuffer(f, bar.Reader(bytes.NewReader(b), int64(len(b)), "writing "+path), make([]byte, 4<<20))
	bar.Done()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

func (o *options) rmCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "rm [--cluster] ID...",
		Short: "Delete objects (deferred until released when in use)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := parseIDs(args)
			if err != nil {
				return err
			}
			if all {
				return o.deleteCluster(cmd, ids)
			}
			return o.withClient(func(ctx context.Context, c *store.Client) error {
				errs, err := c.Delete(ctx, ids...)
				if err != nil {
					return err
				}
				failed := 0
				for i, e := range errs {
					if e != nil {
						failed++
						fmt.Fprintf(cmd.ErrOrStderr(), "plasma: %v\n", e)
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", ids[i])
				}
				if failed > 0 {
					return fmt.Errorf("%d of %d objects not deleted", failed, len(ids))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "cluster", false, "delete on every node of the cluster that holds them (through the stream server at -a)")
	return cmd
}

func (o *options) persistCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "persist ID...",
		Short: "Write objects to the store's cold tier now, so that they survive its restart",
		Long: `Write objects to the store's cold tier (plasma-store-server -e) now. A
store restarted on the same tier lists them as cold and restores them at
their first Get. Fails, naming the object, if the tier cannot take them;
they stay in memory then.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := parseIDs(args)
			if err != nil {
				return err
			}
			return o.withClient(func(ctx context.Context, c *store.Client) error {
				if err := c.Persist(ctx, ids...); err != nil {
					return err
				}
				for _, id := range ids {
					fmt.Fprintf(cmd.OutOrStdout(), "persisted %s\n", id)
				}
				return nil
			})
		},
	}
}

func (o *options) evictCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "evict BYTES",
		Short: "Evict least recently used unreferenced objects to free BYTES",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := cliutil.ParseSize(args[0])
			if err != nil {
				return err
			}
			return o.withClient(func(ctx context.Context, c *store.Client) error {
				freed, err := c.Evict(ctx, n)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "evicted %d bytes\n", freed)
				return nil
			})
		},
	}
}

// parseIDs reads object ids, 40 hex digits each.
func parseIDs(args []string) ([]store.ObjectID, error) {
	ids := make([]store.ObjectID, len(args))
	for i, a := range args {
		var err error
		if ids[i], err = store.ParseObjectID(a); err != nil {
			return nil, err
		}
	}
	return ids, nil
}
