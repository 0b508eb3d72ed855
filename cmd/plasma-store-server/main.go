// Command plasma-store-server runs the local shared-memory object store.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/internal/storeserver"
)

func main() {
	if err := command().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "plasma-store-server:", err)
		os.Exit(1)
	}
}

func command() *cobra.Command {
	var memory, socket, dir, level, waitMemory string
	var huge bool
	var maxClients int
	cmd := &cobra.Command{
		Use:   "plasma-store-server -m SIZE [-s SOCKET] [-d DIR]",
		Short: "Plasma store: a local shared-memory object store",
		Long: `Plasma store: a local shared-memory object store.

Processes on this machine create, seal, get and delete immutable objects in
one shared-memory arena of SIZE bytes, zero-copy. The arena is reserved at
start, so the store never fails later because shared memory ran out.`,
		Version:       cliutil.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if memory == "" {
				return errors.New("-m/--memory is required: the bytes of shared memory to reserve, e.g. -m 1GiB")
			}
			capacity, err := cliutil.ParseSize(memory)
			if err != nil {
				return err
			}
			log, err := cliutil.NewLogger(level)
			if err != nil {
				return err
			}
			if huge && dir == "/dev/shm" {
				dir = "" // hugepages without a hugetlbfs directory: a MFD_HUGETLB memfd
			}
			waitBytes, err := cliutil.ParseSize(waitMemory)
			if err != nil {
				return fmt.Errorf("--blocked-get-memory: %w", err)
			}
			if waitBytes == 0 {
				return errors.New("--blocked-get-memory 0 would fail every Get that waits; give a size such as 64MiB")
			}
			if maxClients < 0 {
				return fmt.Errorf("--max-clients %d: give a positive number, or 0 for the default", maxClients)
			}
			srv, err := storeserver.New(storeserver.Config{Socket: socket, Capacity: capacity, Dir: dir, HugePages: huge, Logger: log,
				MaxClients: maxClients, WaitMemory: waitBytes})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return srv.Serve(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&memory, "memory", "m", "", "bytes of shared memory for objects (e.g. 1073741824, 512MiB, 1G)")
	f.StringVarP(&socket, "socket", "s", "/tmp/plasma", "unix socket the store listens on")
	f.StringVarP(&dir, "directory", "d", "/dev/shm", `directory of the shared-memory file (tmpfs or hugetlbfs); "" for a memfd`)
	f.BoolVar(&huge, "hugepages", false, "back the arena with 2 MiB huge pages (needs vm.nr_hugepages or a hugetlbfs -d)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	f.IntVar(&maxClients, "max-clients", 0, fmt.Sprintf(
		"most clients connected at once; one more is told \"store busy\" and closed. 0: the open-file limit (RLIMIT_NOFILE) minus 32 and a sixteenth of it, kept for the arena and other descriptors (here %d)",
		storeserver.DefaultMaxClients()))
	f.StringVar(&waitMemory, "blocked-get-memory", "64MiB", "memory that blocked Gets may hold, all clients together; a Get beyond it fails with \"store busy\"")
	f.BoolP("version", "V", false, "print the version and exit")
	cmd.SetVersionTemplate("plasma-store-server {{.Version}}\n")
	return cmd
}
