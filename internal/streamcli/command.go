package streamcli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/stream"
)

// DefaultAddr is the server the CLI talks to without --address.
const DefaultAddr = stream.DefaultAddr

// Main runs plasma-stream-cli with os.Args and returns its exit status.
func Main() int {
	code := 0
	cmd := NewCommand(&code)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "plasma-stream-cli:", err)
		return 1
	}
	return code
}

// NewCommand is the plasma-stream-cli command; a run stores its exit
// status in code.
func NewCommand(code *int) *cobra.Command {
	var addr string
	var creds stream.Credentials
	cmd := &cobra.Command{
		Use:   "plasma-stream-cli [--address ADDR]",
		Short: "A simple CLI client for Plasma Stream server",
		Long: `A simple CLI client for Plasma Stream server.

It connects to the Plasma Stream server at --address and sends it requests,
one command a line. On a terminal it shows a prompt with line editing and
history (~/` + HistoryFileName + `); otherwise it reads commands from standard
input, prints one result line per command and exits with status 1 if any
command failed.

` + HelpText,
		Example: `  plasma-stream-cli -a 127.0.0.1:2021
  plasma-stream> COPY 127.0.0.1:2022 0102030405060708090a0b0c0d0e0f1011121314
  echo "TAKE [::1]:2022 0102030405060708090a0b0c0d0e0f1011121314" | plasma-stream-cli -a [::1]:2021`,
		Version:       cliutil.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keyOpts, err := creds.Options()
			if err != nil {
				return err
			}
			cfg := Config{
				Addr: NormalizeAddr(addr),
				In:   os.Stdin,
				Out:  os.Stdout,
				Err:  os.Stderr,
				Dial: DialWith(keyOpts...),
			}
			if term.IsTerminal(int(os.Stdin.Fd())) {
				cfg.Terminal = true
				cfg.HistoryFile = DefaultHistoryFile()
				if term.IsTerminal(int(os.Stderr.Fd())) {
					cfg.Progress = os.Stderr
				}
			}
			*code = Run(context.Background(), cfg)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&addr, "address", "a", DefaultAddr, fmt.Sprintf("Address of the Plasma Stream server (host:port; IPv6 as [::1]:%d; port %d if omitted)", stream.DefaultPort, stream.DefaultPort))
	cliutil.CredentialFlags(f, &creds)
	f.BoolP("version", "V", false, "Prints version information")
	f.BoolP("help", "h", false, "Prints help information")
	cmd.SetVersionTemplate("plasma-stream-cli {{.Version}}\n")
	return cmd
}
