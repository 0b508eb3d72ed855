package plasmacmd

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/internal/trust"
)

func (o *options) keygenCmd() *cobra.Command {
	var out, name string
	var force bool
	cmd := &cobra.Command{
		Use:   "keygen [-o FILE] [--force]",
		Short: "Make a node identity: write an Ed25519 private key file, print its public key",
		Long: `Make a new Ed25519 identity for a node or a client. The private key is
written to FILE (default ./` + trust.DefaultKeyFile + `) as 64 hex digits, mode 0600, and
appears whole or not at all. An existing FILE is never replaced unless
--force is given. The private key is never printed: "-o -" is refused.

Prints the public key (64 hex digits) on stdout and, on stderr, a line to
add to the trust file of every peer that should accept this key:
  <public key> <name> <role>
with the role read; change it to write or admin as the peer needs.
See docs/trust.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "-" || out == "" {
				return errors.New("-o: name a file; a private key is never written to stdout")
			}
			if !trust.ValidName(name) {
				return fmt.Errorf("--name %q: use letters, digits and . _ - @ : / + = only", name)
			}
			id, err := trust.Generate()
			if err != nil {
				return err
			}
			if err := trust.WriteKey(out, id, force); err != nil {
				if errors.Is(err, trust.ErrKeyExists) {
					return fmt.Errorf("%s already exists: not replacing a private key (--force replaces it; nodes and peers that trust the old key will refuse the new one)", out)
				}
				return err
			}
			pub := id.Public()
			fmt.Fprintln(cmd.OutOrStdout(), pub)
			fmt.Fprintf(cmd.ErrOrStderr(), "plasma: wrote private key %s (mode 0600; keep it secret)\n# for the trust file of each peer that should accept this key (role read, write or admin):\n%s %s read\n", out, pub, name)
			return nil
		},
	}
	host, _ := os.Hostname()
	if !trust.ValidName(host) {
		host = "NAME"
	}
	cmd.Flags().StringVarP(&out, "output", "o", trust.DefaultKeyFile, "the private key file to write")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing key file")
	cmd.Flags().StringVar(&name, "name", host, "the name in the suggested trust file line")
	return cmd
}

func (o *options) keyCmd() *cobra.Command {
	key := &cobra.Command{
		Use:   "key",
		Short: "Inspect node identities",
	}
	key.AddCommand(&cobra.Command{
		Use:   "show FILE",
		Short: "Print the public key (64 hex digits) of a private key file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := trust.LoadKey(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id.Public())
			return nil
		},
	})
	return key
}
