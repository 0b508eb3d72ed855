package storeserver

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/plasmastream/plasmastream/internal/arena"
)

// While the store reserves its memory, nothing is at the socket's path:
// a client (pyarrow's start_plasma_store waits for the socket to accept)
// must not connect to a store that may yet fail to start, as one asking
// for more huge pages than are reserved does. When the reservation fails,
// nothing is left behind, and when it succeeds the socket appears.
func TestSocketAppearsOnlyOnceTheMemoryIsReserved(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s")
	reserve := errors.New("cannot reserve: no space left on device")
	var during error
	createArena = func(size uint64, o arena.Options) (*arena.Arena, error) {
		_, during = os.Lstat(sock)
		return nil, reserve
	}
	t.Cleanup(func() { createArena = arena.Create })
	_, err := New(Config{Socket: sock, Capacity: 1 << 20})
	if !errors.Is(err, reserve) {
		t.Fatalf("New = %v, want the reservation's error", err)
	}
	if !os.IsNotExist(during) {
		t.Fatalf("while the memory was being reserved, Lstat(%s) = %v: a client could connect to a store about to fail", sock, during)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a failed start left %v in the socket's directory", entries)
	}

	createArena = func(size uint64, o arena.Options) (*arena.Arena, error) {
		_, during = os.Lstat(sock)
		return arena.Create(size, o)
	}
	s, err := New(Config{Socket: sock, Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.sock.close(); s.arena.Close() }()
	if !os.IsNotExist(during) {
		t.Fatalf("while the memory was being reserved, Lstat(%s) = %v", sock, during)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("after New the socket accepts: %v", err)
	}
	c.Close()
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the socket's directory holds %v, want the socket alone", entries)
	}
}
