package storeserver

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultSocketMode is the permission of the store's socket: only its
// owner (and root) may connect, so other local users can neither read
// nor delete objects. --socket-mode and --socket-group share it.
const DefaultSocketMode fs.FileMode = 0o600

// socketFile is the store's bound socket. listen binds it in a private
// directory; publish renames it to its final path once the store can
// serve, so a client never connects to a store that is still starting
// (and may yet fail to reserve its memory). Its inode is remembered so
// that closing the store removes its own socket and never one that
// another store has bound at the same path since.
type socketFile struct {
	ln       *net.UnixListener
	path     string
	dir, tmp string // the private directory and the name bound in it, until published
	dev, ino uint64
}

// listen binds a socket for path with the given mode and group (gid < 0:
// the process's), after removing a stale socket file left there by a dead
// store and refusing when a live one answers. The socket is not at path
// until publish.
//
// The socket never exists at path with wider permissions than asked:
// it is bound inside a fresh directory of mode 0700 beside path (no other
// user can connect through it), given its mode and group there, and only
// then renamed into place. Setting the umask around bind would do the
// same but the umask is per process, and would race with any other
// goroutine creating files (stores started in one test process, the
// arena file).
func listen(path string, mode fs.FileMode, gid int) (*socketFile, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".ps")
	if err != nil {
		return nil, fmt.Errorf("listen on %s: a private directory to bind in: %w", path, err)
	}
	tmp := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// The listener would unlink tmp, not path: socketFile.close removes
	// the socket instead.
	ln.SetUnlinkOnClose(false)
	sf := &socketFile{ln: ln, path: path, dir: dir, tmp: tmp}
	if err := sf.setMode(mode, gid); err != nil {
		sf.close()
		return nil, err
	}
	return sf, nil
}

// setMode gives the socket, still in its private directory, its mode and
// group.
func (sf *socketFile) setMode(mode fs.FileMode, gid int) error {
	if err := os.Chmod(sf.tmp, mode); err != nil {
		return fmt.Errorf("socket %s: set mode %#o: %w", sf.path, mode, err)
	}
	if gid >= 0 {
		if err := os.Lchown(sf.tmp, -1, gid); err != nil {
			return fmt.Errorf("--socket-group %s: cannot give the socket to this group: %w (only root can give a file to a group it is not a member of)", groupName(gid), err)
		}
	}
	return nil
}

// publish renames the socket to sf.path, without replacing anything that
// appeared there meanwhile, and removes the private directory.
func (sf *socketFile) publish() error {
	err := unix.Renameat2(unix.AT_FDCWD, sf.tmp, unix.AT_FDCWD, sf.path, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		err = os.Rename(sf.tmp, sf.path) // a file system without RENAME_NOREPLACE
	}
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("listen on %s: a file appeared there while the store was starting; is another store starting on it?", sf.path)
	}
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sf.path, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(sf.path, &st); err == nil {
		sf.dev, sf.ino = st.Dev, st.Ino
	}
	os.RemoveAll(sf.dir)
	sf.dir, sf.tmp = "", ""
	return nil
}

// close stops listening and removes the socket if it is still this one
// (or, before publish, its private directory).
func (sf *socketFile) close() {
	sf.ln.Close()
	if sf.dir != "" {
		os.RemoveAll(sf.dir)
		return
	}
	var st unix.Stat_t
	if unix.Lstat(sf.path, &st) == nil && st.Dev == sf.dev && st.Ino == sf.ino {
		os.Remove(sf.path)
	}
}

// removeStale removes a socket file left at path by a dead store; a live
// store or a file that is not a socket is an error.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; refusing to replace it", path)
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w: %s (stop it first or choose another socket with -s)", ErrStoreRunning, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("probe existing socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// LookupGroup resolves --socket-group: a group name or a numeric gid.
func LookupGroup(name string) (int, error) {
	if gid, err := strconv.Atoi(name); err == nil {
		if gid < 0 {
			return 0, fmt.Errorf("--socket-group %s: a gid cannot be negative", name)
		}
		return gid, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("--socket-group %s: no such group (give a group name or a numeric gid)", name)
	}
	return strconv.Atoi(g.Gid)
}

// groupName is "NAME (gid N)", or "gid N" for a gid without a name.
func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return fmt.Sprintf("%s (gid %d)", g.Name, gid)
	}
	return fmt.Sprintf("gid %d", gid)
}

// ParseSocketMode parses --socket-mode: octal permission bits such as
// 0660. The owner must keep read and write (it runs the store's tools).
func ParseSocketMode(s string) (fs.FileMode, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v&^0o777 != 0 {
		return 0, fmt.Errorf("--socket-mode %q: give octal permission bits such as 0600 or 0660", s)
	}
	return fs.FileMode(v), nil
}

// peerCred is the connecting process's uid, gid and pid (SO_PEERCRED),
// as the kernel recorded them at connect; zero if unavailable.
func peerCred(uc *net.UnixConn) unix.Ucred {
	var cred unix.Ucred
	raw, err := uc.SyscallConn()
	if err != nil {
		return cred
	}
	raw.Control(func(fd uintptr) {
		if c, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			cred = *c
		}
	})
	return cred
}
