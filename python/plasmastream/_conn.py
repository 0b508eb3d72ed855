"""A framed connection to the store: connect, Hello handshake (receiving the
arena descriptor with SCM_RIGHTS), framed reads and writes."""

from __future__ import annotations

import array
import os
import socket
import struct
import time

from . import _wire as w
from .errors import ConnectionClosed, ProtocolError, SocketOwnerError, error_for_code

HANDSHAKE_TIMEOUT = 30.0
_RECV_CHUNK = 1 << 20
# How long a reader polls before it sleeps in recv (PLASMASTREAM_SPIN_US,
# microseconds; 0 turns polling off).
SPIN_S = float(os.environ.get("PLASMASTREAM_SPIN_US", "50")) / 1e6


def resolve_user(user) -> int:
    """A uid from a uid or a user name (``socket_owner=``)."""
    if isinstance(user, int):
        return user
    if str(user).isdigit():
        return int(user)
    import pwd

    try:
        return pwd.getpwnam(str(user)).pw_uid
    except KeyError:
        raise ValueError(f"socket owner {user!r}: no such user (give a user name or a numeric uid)") from None


def _trusted_uids(socket_owner) -> set:
    trusted = {os.geteuid(), 0}
    if socket_owner is not None:
        owners = socket_owner if isinstance(socket_owner, (list, tuple, set)) else [socket_owner]
        trusted.update(resolve_user(o) for o in owners)
    return trusted


def _owner_error(what: str, prep: str, uid: int) -> SocketOwnerError:
    owner, hint = f"uid {uid}", str(uid)
    try:
        import pwd

        name = pwd.getpwuid(uid).pw_name
        owner, hint = f"uid {uid} ({name})", name
    except (KeyError, ImportError):
        pass
    return SocketOwnerError(
        f"{what} {owner}, not {prep} you (uid {os.geteuid()}) or root: "
        f"another user's store? pass socket_owner={hint!r} to trust it")


def check_socket_owner(path: str, socket_owner=None) -> None:
    """Refuse a socket owned by anyone but this user, root and socket_owner
    (a uid, a user name, or a list of them). A missing socket passes:
    connecting reports it."""
    try:
        uid = os.stat(path).st_uid
    except OSError:
        return
    if uid not in _trusted_uids(socket_owner):
        raise _owner_error(f"socket {path} is owned by", "by", uid)


def check_socket_peer(sock: socket.socket, path: str, socket_owner=None) -> None:
    """Refuse a connected socket whose listening process (SO_PEERCRED) runs
    as a user check_socket_owner would refuse: the path may have led
    elsewhere between the owner check and the connect."""
    peercred = getattr(socket, "SO_PEERCRED", None)
    if peercred is None:  # not Linux: the owner check is all there is
        return
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, peercred, struct.calcsize("3i")))
    if uid not in _trusted_uids(socket_owner):
        raise _owner_error(f"the store at {path} runs as", "as", uid)


class Conn:
    """One stream connection. Not thread-safe: callers serialise access."""

    def __init__(self, path: str, version: int = w.VERSION, spin_s: float = SPIN_S, socket_owner=None):
        check_socket_owner(path, socket_owner)
        self.path = path
        self.spin_s = spin_s
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._buf = bytearray()
        self._pos = 0
        self.arena_fd = -1
        try:
            try:
                self.sock.settimeout(HANDSHAKE_TIMEOUT)
                self.sock.connect(path)
            except OSError as e:
                raise ConnectionClosed(
                    f"connect to store at {path} (is plasma-store-server running?): {e}") from e
            check_socket_peer(self.sock, path, socket_owner)
            self.arena_fd, self.arena_size, self.capacity = self._handshake(version)
            self.sock.settimeout(None)
        except BaseException:
            self.close()
            raise

    # -- handshake ---------------------------------------------------------

    def _handshake(self, version: int):
        self.sock.sendall(w.frame(w.HELLO, 1, w.hello(version)))
        fds: list[int] = []
        try:
            try:
                msg, anc, flags, _ = self.sock.recvmsg(
                    4096, socket.CMSG_SPACE(4 * array.array("i").itemsize),
                    getattr(socket, "MSG_CMSG_CLOEXEC", 0))
            except OSError as e:
                raise ConnectionClosed(f"store at {self.path}: read hello reply: {e}") from e
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(data[: len(data) - len(data) % a.itemsize])
                    fds.extend(a)
            if flags & getattr(socket, "MSG_CTRUNC", 0):
                raise ProtocolError(f"store at {self.path}: arena descriptor truncated")
            if not msg:
                raise ConnectionClosed(f"store at {self.path} closed the connection during the handshake")
            # The reply may arrive in more than one piece; the descriptor
            # rides on the first.
            self._buf += msg
            t, _, payload = self.read_frame()
            if t == w.ERROR:
                code, text = w.decode_error(payload)
                raise error_for_code(code, f"store at {self.path}: {text}")
            if t != w.HELLO | w.REPLY_BIT or len(payload) != w.HELLO_REPLY.size:
                raise ProtocolError(
                    f"store at {self.path}: unexpected hello reply {w.type_name(t)} of {len(payload)} bytes")
            ver, arena_size, capacity = w.HELLO_REPLY.unpack(payload)
            if not fds:
                raise ProtocolError(f"store at {self.path} sent no arena descriptor")
            fd = fds.pop(0)
            return fd, arena_size, capacity
        finally:
            for fd in fds:
                os.close(fd)

    # -- frames ------------------------------------------------------------

    def send(self, data) -> None:
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise ConnectionClosed(f"send to store at {self.path}: {e}") from e

    def _fill(self, n: int) -> None:
        """Make at least n unread bytes available. Polls the socket for up to
        spin_s seconds before sleeping in recv: the store answers most
        requests within microseconds, and a sleeping reader pays a wake-up
        (on the development VM a round trip drops from ~25 to ~11 us)."""
        if len(self._buf) - self._pos >= n:
            return
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        deadline = 0.0
        while len(self._buf) < n:
            size = max(65536, min(n - len(self._buf), _RECV_CHUNK))
            try:
                if self.spin_s > 0:
                    try:
                        chunk = self.sock.recv(size, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        now = time.perf_counter()
                        if not deadline:
                            deadline = now + self.spin_s
                        if now < deadline:
                            continue
                        chunk = self.sock.recv(size)
                else:
                    chunk = self.sock.recv(size)
            except OSError as e:
                raise ConnectionClosed(f"read from store at {self.path}: {e}") from e
            if not chunk:
                raise ConnectionClosed(f"store at {self.path} closed the connection")
            self._buf += chunk

    def buffered_frame(self) -> bool:
        """Whether a whole frame is already buffered (readable without blocking)."""
        avail = len(self._buf) - self._pos
        if avail < w.HEADER_SIZE:
            return False
        (n,) = w.U32.unpack_from(self._buf, self._pos)
        return avail >= w.HEADER_SIZE + n

    def read_frame(self) -> tuple[int, int, bytes]:
        """Read one frame; returns (type, request id, payload)."""
        self._fill(w.HEADER_SIZE)
        n, t, flags, rid = w.HEADER.unpack_from(self._buf, self._pos)
        if flags != 0 or n > w.MAX_REPLY_PAYLOAD:
            raise ProtocolError(
                f"store at {self.path} sent a bad frame header (length {n}, type {t:#x}, flags {flags:#x})")
        self._fill(w.HEADER_SIZE + n)
        start = self._pos + w.HEADER_SIZE
        payload = bytes(self._buf[start:start + n])
        self._pos = start + n
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        return t, rid, payload

    def fileno(self) -> int:
        return self.sock.fileno()

    def shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        if self.arena_fd >= 0:
            try:
                os.close(self.arena_fd)
            except OSError:
                pass
            self.arena_fd = -1
        self.sock.close()
