package plasmacmd

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/internal/trust"
)

// plasma ca init / ca issue: a small certificate authority for operators
// without a PKI (internal/trust/pki.go), for the stream server's CA mode
// and for etcd's client certificates (docs/trust.md).

func (o *options) caCmd() *cobra.Command {
	ca := &cobra.Command{
		Use:   "ca",
		Short: "A small certificate authority for CA mode (--tls-cert/--tls-key/--tls-ca) and etcd TLS",
	}
	ca.AddCommand(caInitCmd(), caIssueCmd())
	return ca
}

func caInitCmd() *cobra.Command {
	var name string
	var force bool
	cmd := &cobra.Command{
		Use:   "init DIR [--name NAME] [--force]",
		Short: "Make a CA: write DIR/" + trust.CAFile + " and its key DIR/" + trust.CAKeyFile,
		Long: `Make a new certificate authority (ECDSA P-256, valid ten years) and write
its certificate to DIR/` + trust.CAFile + ` (mode 0644: give it to every node and client
as --tls-ca) and its private key to DIR/` + trust.CAKeyFile + ` (mode 0600: whoever holds it
can issue certificates every node trusts). DIR is created (0700) if
missing. Existing files are never replaced unless --force is given.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			ca, err := trust.NewCA(name)
			if err != nil {
				return err
			}
			if err := trust.WriteCA(dir, ca, force); err != nil {
				if errors.Is(err, trust.ErrKeyExists) {
					return fmt.Errorf("%s already holds a CA: not replacing it (--force replaces it; every certificate it issued would then be refused)", dir)
				}
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "plasma: wrote CA certificate %s and its private key %s (mode 0600; keep it secret)\n",
				filepath.Join(dir, trust.CAFile), filepath.Join(dir, trust.CAKeyFile))
			fmt.Fprintf(w, "# issue a certificate for each node and client, e.g.:\nplasma ca issue %s NODE --role write --host NODE-HOST\n", dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "plasma-ca", "the CA's common name")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing CA")
	return cmd
}

func caIssueCmd() *cobra.Command {
	var hosts []string
	var role trust.Role
	var valid time.Duration
	var prefix string
	var force bool
	cmd := &cobra.Command{
		Use:   "issue DIR NAME [--host H,...] [--role read|write|admin] [--valid DURATION] [-o PREFIX] [--force]",
		Short: "Issue a certificate signed by the CA in DIR: write PREFIX.crt and PREFIX.key",
		Long: `Issue a certificate for a node or a client, signed by the CA in DIR
(plasma ca init), usable for both ends of a connection. NAME is its common
name: the peer's name in the stream server's logs and errors. --role puts
the role in the certificate (organizational unit plasma:ROLE); without it
the stream server applies --tls-default-role (etcd certificates need no
role). --host lists the DNS names and IP addresses the holder serves on
(for etcd, which checks them; default localhost,127.0.0.1).

Writes PREFIX.crt (mode 0644) and PREFIX.key (mode 0600), PREFIX being
DIR/NAME unless -o says otherwise. Existing files are never replaced
unless --force is given.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, name := args[0], args[1]
			if valid < 0 {
				return fmt.Errorf("--valid %v: a duration cannot be negative", valid)
			}
			ca, err := trust.LoadCA(dir)
			if err != nil {
				return err
			}
			certPEM, keyPEM, err := ca.Issue(trust.IssueOptions{Name: name, Hosts: hosts, Role: role, Valid: valid})
			if err != nil {
				return err
			}
			defer clear(keyPEM)
			if prefix == "" {
				prefix = filepath.Join(dir, name)
			}
			certFile, keyFile := prefix+".crt", prefix+".key"
			if err := trust.WritePair(certFile, keyFile, certPEM, keyPEM, force); err != nil {
				if errors.Is(err, trust.ErrKeyExists) {
					return fmt.Errorf("%s or %s already exists: not replacing it (--force replaces it)", certFile, keyFile)
				}
				return err
			}
			printIssued(cmd, dir, name, role, valid, hosts, certFile, keyFile)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&hosts, "host", nil, "DNS names and IP addresses the holder serves on, comma-separated (default localhost,127.0.0.1)")
	f.Var(&role, "role", "the holder's role on stream servers: read, write or admin (default: none in the certificate, --tls-default-role applies)")
	f.DurationVar(&valid, "valid", 365*24*time.Hour, "how long the certificate is valid")
	f.StringVarP(&prefix, "output", "o", "", "write PREFIX.crt and PREFIX.key (default DIR/NAME)")
	f.BoolVar(&force, "force", false, "replace existing files")
	return cmd
}

// printIssued says what issue wrote and how to use it.
func printIssued(cmd *cobra.Command, dir, name string, role trust.Role, valid time.Duration, hosts []string, certFile, keyFile string) {
	if valid == 0 {
		valid = 365 * 24 * time.Hour
	}
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1"}
	}
	caFile := filepath.Join(dir, trust.CAFile)
	flags := fmt.Sprintf("--tls-cert %s --tls-key %s --tls-ca %s", certFile, keyFile, caFile)
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "plasma: wrote certificate %s (name %s, role %s, hosts %s, valid until %s) and its private key %s (mode 0600; keep it secret)\n",
		certFile, name, role, strings.Join(hosts, ","), time.Now().Add(valid).UTC().Format(time.DateOnly), keyFile)
	fmt.Fprintf(w, "# a stream server:  plasma-stream-server %s\n", flags)
	fmt.Fprintf(w, "# a client:         plasma-stream-cli -a HOST:PORT %s   (or: plasma %s ...)\n", flags, flags)
	fmt.Fprintf(w, "# etcd:             --etcd-cert %s --etcd-key %s --etcd-ca %s\n", certFile, keyFile, caFile)
}
