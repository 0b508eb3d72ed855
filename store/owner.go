package store

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrSocketOwner is a store socket owned by a user this client does not
// trust: not itself, not root, not one given with WithSocketOwner. The
// default socket is in /tmp, where any user can create it first and so
// receive what this client puts (or serve it forged objects).
var ErrSocketOwner = errors.New("store socket owned by another user")

// ConnectOption changes how Connect reaches the store.
type ConnectOption func(*connectConfig)

type connectConfig struct {
	owners []uint32 // uids trusted to own the socket besides this user and root
	// park: read without polling first (a subscription, whose frames
	// come when the store has news, not right after a request).
	park bool
	// prefault: map the whole arena in the background (WithPrefault).
	prefault bool
}

// WithPrefault has the client map the store's whole arena into its page
// tables in the background after connecting, so that its writes into
// memory it never touched run as fast as into memory it did. It suits a
// long-lived writer (the stream server uses it) and costs page tables of
// about 0.2% of the arena; without it, Create maps only the range of each
// object of 256 KiB or more, just before handing it out.
func WithPrefault() ConnectOption {
	return func(c *connectConfig) { c.prefault = true }
}

// WithSocketOwner trusts a store whose socket is owned by uid (besides
// this process's user and root, always trusted): a store another user
// runs and shares with --socket-mode/--socket-group.
func WithSocketOwner(uid uint32) ConnectOption {
	return func(c *connectConfig) { c.owners = append(c.owners, uid) }
}

// LookupUser resolves a user name or numeric uid, as --socket-owner takes.
func LookupUser(name string) (uint32, error) {
	if uid, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(uid), nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, fmt.Errorf("socket owner %q: no such user (give a user name or a numeric uid)", name)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	return uint32(uid), err
}

// checkOwner refuses a socket owned by anyone but this user, root and
// the trusted owners. A missing socket passes: connecting reports it.
func (c *connectConfig) checkOwner(socket string) error {
	fi, err := os.Stat(socket)
	if err != nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || c.trusts(st.Uid) {
		return nil
	}
	return ownerError(fmt.Sprintf("socket %s is owned by", socket), "by", st.Uid)
}

// checkPeer refuses a connection whose listening process (SO_PEERCRED)
// runs as a user checkOwner would refuse. The socket's owner was checked
// before connecting, but the path may have led elsewhere by the time of
// connect (a symbolic link swapped in a directory another user can
// write); the kernel's record of who listens cannot be swapped.
func (c *connectConfig) checkPeer(uc *net.UnixConn, socket string) error {
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("store at %s: who serves the socket (SO_PEERCRED): %w", socket, cerr)
	}
	if c.trusts(cred.Uid) {
		return nil
	}
	return ownerError(fmt.Sprintf("the store at %s runs as", socket), "as", cred.Uid)
}

// trusts reports whether uid may own or serve the store: this user, root
// or one given with WithSocketOwner.
func (c *connectConfig) trusts(uid uint32) bool {
	return uid == uint32(os.Geteuid()) || uid == 0 || slices.Contains(c.owners, uid)
}

// ownerError names the user who owns or serves the socket (what and
// prep say which) and how to trust it.
func ownerError(what, prep string, uid uint32) error {
	owner, hint := fmt.Sprintf("uid %d", uid), strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(hint); err == nil {
		owner, hint = fmt.Sprintf("uid %d (%s)", uid, u.Username), u.Username
	}
	return fmt.Errorf("%w: %s %s, not %s you (uid %d) or root: another user's store? pass --socket-owner %s to trust it",
		ErrSocketOwner, what, owner, prep, os.Geteuid(), hint)
}
