package testutil

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// ForeignUID is the uid ForeignOwner gives a socket: nobody's.
const ForeignUID = 65534

// ForeignOwner hands path (a store's socket) to another user, ForeignUID,
// as if that user had created it first, so that clients must refuse it.
// Only root can give a file away: the test is skipped for other users
// (CI runs as root).
func ForeignOwner(t testing.TB, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can give a socket to another user")
	}
	if err := os.Chown(path, ForeignUID, ForeignUID); err != nil {
		t.Fatal(err)
	}
}

// ForeignStore runs the real plasma-store-server as ForeignUID and
// then gives its socket to root, as if a path that checked out (a root
// socket) had been swapped for another user's store between a client's
// check of the owner and its connect: only the kernel's record of who
// listens (SO_PEERCRED) tells. Skipped for users other than root.
func ForeignStore(t testing.TB, memory string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can run a store as another user")
	}
	dir := ShortDir(t) // the foreign user can reach it, and writes the socket in run/
	bin, err := os.ReadFile(filepath.Join(Binaries(t), "plasma-store-server"))
	if err != nil {
		t.Fatal(err)
	}
	exe, run := filepath.Join(dir, "plasma-store-server"), filepath.Join(dir, "run")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(os.Chmod(dir, 0o755), os.Chown(run, ForeignUID, ForeignUID)); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(run, "store.sock")
	cmd := exec.Command(exe, "-m", memory, "-s", sock, "-d", "")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: ForeignUID, Gid: ForeignUID}}
	cmd.Stderr = &prefixWriter{t: t, prefix: "foreign store: "}
	WaitSocket(t, sock, Run(t, cmd))
	if err := os.Chown(sock, 0, 0); err != nil {
		t.Fatal(err)
	}
	return sock
}
