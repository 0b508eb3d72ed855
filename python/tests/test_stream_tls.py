"""The stream client against a keyed plasma-stream-server (-k KEY
--trusted-keys FILE): mutual TLS 1.3 with pinned Ed25519 keys
(docs/trust.md). Keys come from the Go `plasma keygen`."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading

import pytest

import plasmastream as ps
from plasmastream import _streamwire as sw
from plasmastream import _tls, stream
from plasmastream.stream import COPY, PeerRequest, StreamError
from test_stream import Node


class Keys:
    """Key files made by `plasma keygen`, their public keys, a trust file."""

    def __init__(self, bins: str):
        self.dir = tempfile.mkdtemp(prefix="pskeys")
        self.bins = bins
        self.pub = {}

    def make(self, name: str) -> str:
        path = self.path(name)
        r = subprocess.run([os.path.join(self.bins, "plasma"), "keygen", "-o", path, "--name", name],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        self.pub[name] = r.stdout.strip()
        return path

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name + ".key")

    def trust_file(self, **roles) -> str:
        path = os.path.join(self.dir, "trusted-keys")
        with open(path, "w") as f:
            for name, role in roles.items():
                f.write(f"{self.pub[name]} {name} {role}\n")
        os.chmod(path, 0o600)
        return path


@pytest.fixture(scope="module")
def keyed(go_bins):
    """A keyed node trusting `reader` (read) and `admin` (admin); `stranger`
    has a key the node does not know."""
    keys = Keys(go_bins)
    for name in ("server", "reader", "admin", "stranger"):
        keys.make(name)
    trust = keys.trust_file(reader="read", admin="admin")
    node = Node(go_bins, "keyed", ["-k", keys.path("server"), "--trusted-keys", trust])
    try:
        yield node, keys
    finally:
        node.stop()
        shutil.rmtree(keys.dir, ignore_errors=True)


def test_key_connects_and_pins_server(keyed):
    node, keys = keyed
    oid = ps.ObjectID.from_random()
    node.plasma.put(b"over tls", oid)
    for who in ("reader", "admin"):
        with stream.connect(node.addr, key=keys.path(who), server_key=keys.pub["server"]) as c:
            assert c.ping() >= 0
            assert oid in c.list()
            assert c.server_key == keys.pub["server"]
            assert c.node == "keyed"
    # The pinned key may be given in upper case, like the Go tools accept.
    with stream.connect(node.addr, key=keys.path("reader"), server_key=keys.pub["server"].upper()) as c:
        c.ping()


def test_no_key_refused(keyed):
    node, _ = keyed
    with pytest.raises(StreamError) as e:
        stream.connect(node.addr, timeout=10)
    # The server drops a plain HELLO, at most with a TLS alert.
    assert e.value.code in (sw.NOT_PERMITTED, sw.CONNECTION_LOST), e.value
    assert "connect with key= and server_key=" in e.value.message


def test_unknown_key_refused(keyed):
    node, keys = keyed
    with pytest.raises(StreamError) as e:
        stream.connect(node.addr, key=keys.path("stranger"), server_key=keys.pub["server"], timeout=10)
    assert e.value.code == sw.NOT_PERMITTED, e.value
    assert f"refused this client's key {keys.pub['stranger']}" in e.value.message


def test_wrong_pinned_server_key_refused(keyed):
    node, keys = keyed
    with pytest.raises(StreamError) as e:
        stream.connect(node.addr, key=keys.path("reader"), server_key=keys.pub["stranger"], timeout=10)
    assert e.value.code == sw.PEER_UNREACHABLE
    assert e.value.message == (f"server at {node.addr} proved key {keys.pub['server']}, "
                               f"not the pinned {keys.pub['stranger']}")


def test_man_in_the_middle_gets_nothing(keyed):
    # A TLS server with its own key (as a man in the middle has): the
    # client completes the handshake, sees the wrong key, and closes
    # without sending a protocol byte.
    _, keys = keyed
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    mitm = Ed25519PrivateKey.generate()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(*_write_pems(keys.dir, mitm))
    ln = socket.create_server(("127.0.0.1", 0))
    got = {}

    def serve():
        conn, _ = ln.accept()
        conn.settimeout(20)
        try:
            with ctx.wrap_socket(conn, server_side=True) as t:
                data = b""
                while True:
                    chunk = t.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                got["data"] = data
        except (OSError, ssl.SSLError) as e:  # the client's close may end TLS untidily
            got["data"] = got.get("data", b"")
            got["err"] = e

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    addr = f"127.0.0.1:{ln.getsockname()[1]}"
    try:
        with pytest.raises(StreamError, match=f"server at {addr} proved key {_tls.public_hex(mitm)}, not the pinned"):
            stream.connect(addr, key=keys.path("reader"), server_key=keys.pub["server"], timeout=10)
        th.join(20)
        assert not th.is_alive()
        assert got["data"] == b"", got
    finally:
        ln.close()


def _write_pems(d: str, priv):
    from cryptography.hazmat.primitives import serialization

    cert = os.path.join(d, "mitm.crt")
    key = os.path.join(d, "mitm.pem")
    with open(cert, "wb") as f:
        f.write(_tls._certificate(priv))
    with open(key, "wb") as f:
        f.write(priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    return cert, key


def test_read_key_cannot_sync(keyed):
    node, keys = keyed
    oid = ps.ObjectID.from_random()
    with stream.connect(node.addr, key=keys.path("reader"), server_key=keys.pub["server"]) as c:
        with pytest.raises(StreamError) as e:
            c.sync([PeerRequest(COPY, "127.0.0.1:1", [oid])])
        assert e.value.code == sw.NOT_PERMITTED
        assert "key reader has role read; SYNC needs write" in e.value.message
        assert c.ping() >= 0  # the connection stays usable
        with pytest.raises(StreamError) as e:
            c.pull(oid, ["127.0.0.1:1"])
        assert e.value.code == sw.NOT_PERMITTED


def test_key_arguments(keyed, tmp_path):
    node, keys = keyed
    with pytest.raises(ValueError, match="go together"):
        stream.connect(node.addr, key=keys.path("reader"))
    with pytest.raises(ValueError, match="go together"):
        stream.connect(node.addr, server_key=keys.pub["server"])
    with pytest.raises(ValueError, match="want 64 hex digits"):
        stream.connect(node.addr, key=keys.path("reader"), server_key="abcd")
    loose = tmp_path / "loose.key"
    shutil.copy(keys.path("reader"), loose)
    os.chmod(loose, 0o644)
    with pytest.raises(ValueError, match=f"private key {loose} is readable by others \\(mode 0644\\): chmod 600"):
        stream.connect(node.addr, key=str(loose), server_key=keys.pub["server"])
    secret = "ab" * 32
    bad = tmp_path / "bad.key"
    bad.write_text(secret[:-1] + "x\n")
    os.chmod(bad, 0o600)
    with pytest.raises(ValueError, match="is malformed") as e:
        stream.connect(node.addr, key=str(bad), server_key=keys.pub["server"])
    assert secret[:10] not in str(e.value)  # a key's content never reaches messages
    with pytest.raises(ValueError, match="No such file"):
        stream.connect(node.addr, key=str(tmp_path / "none.key"), server_key=keys.pub["server"])


def test_plain_hello_answered_by_tls_alert():
    # What a TLS server may answer to a plain HELLO: a TLS alert record.
    ln = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = ln.accept()
        with conn:
            conn.settimeout(20)
            conn.recv(4096)
            conn.sendall(b"\x15\x03\x03\x00\x02\x02\x0a")  # alert: unexpected_message

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        with pytest.raises(StreamError, match="answered HELLO with a TLS alert: it serves only clients with a key") as e:
            stream.connect(f"127.0.0.1:{ln.getsockname()[1]}", timeout=10)
        assert e.value.code == sw.NOT_PERMITTED
        th.join(20)
    finally:
        ln.close()


# -- CA mode (--tls-cert --tls-key --tls-ca) ---------------------------------


class PKI:
    """A CA made by `plasma ca init` and certificates by `plasma ca issue`."""

    def __init__(self, bins: str, name: str):
        self.bins = bins
        self.dir = tempfile.mkdtemp(prefix="psca")
        self.ca = os.path.join(self.dir, "ca.crt")
        self._run("ca", "init", self.dir, "--name", name)

    def _run(self, *args):
        r = subprocess.run([os.path.join(self.bins, "plasma"), *args], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr

    def issue(self, name: str, role=None) -> dict:
        self._run("ca", "issue", self.dir, name, *(["--role", role] if role else []))
        base = os.path.join(self.dir, name)
        return {"tls_cert": base + ".crt", "tls_key": base + ".key", "tls_ca": self.ca}

    def server_args(self, name: str, role="write") -> list:
        f = self.issue(name, role)
        return ["--tls-cert", f["tls_cert"], "--tls-key", f["tls_key"], "--tls-ca", f["tls_ca"]]


@pytest.fixture(scope="module")
def ca_node(go_bins):
    pki = PKI(go_bins, "site-ca")
    node = Node(go_bins, "canode", pki.server_args("canode"))
    try:
        yield node, pki
    finally:
        node.stop()
        shutil.rmtree(pki.dir, ignore_errors=True)


def test_ca_mode_connects_with_certificate(ca_node):
    node, pki = ca_node
    oid = ps.ObjectID.from_random()
    node.plasma.put(b"over ca tls", oid)
    with stream.connect(node.addr, **pki.issue("pyreader", "read")) as c:
        assert c.ping() >= 0
        assert oid in c.list()
        assert c.node == "canode"
        with pytest.raises(StreamError) as e:
            c.sync([PeerRequest(COPY, "127.0.0.1:1", [oid])])
        assert e.value.code == sw.NOT_PERMITTED
        assert "key pyreader has role read; SYNC needs write" in e.value.message
        assert c.ping() >= 0


def test_ca_mode_refuses_without_certificate(ca_node, go_bins):
    node, pki = ca_node
    with pytest.raises(StreamError) as e:
        stream.connect(node.addr, timeout=10)
    assert e.value.code in (sw.NOT_PERMITTED, sw.CONNECTION_LOST), e.value
    # A certificate without a role (the server's default role is none), or
    # of another CA, is refused at the handshake.
    with pytest.raises(StreamError) as e:
        stream.connect(node.addr, timeout=10, **pki.issue("norole"))
    assert e.value.code == sw.NOT_PERMITTED, e.value
    assert "refused this client's certificate" in e.value.message
    other = PKI(go_bins, "other-ca")
    try:
        foreign = other.issue("intruder", "admin")
        foreign["tls_ca"] = pki.ca
        with pytest.raises(StreamError) as e:
            stream.connect(node.addr, timeout=10, **foreign)
        assert e.value.code == sw.NOT_PERMITTED, e.value
        # This client refuses a server its CA did not issue.
        with pytest.raises(StreamError) as e:
            stream.connect(node.addr, timeout=10, **other.issue("me", "admin"))
        assert e.value.code == sw.PEER_UNREACHABLE, e.value
    finally:
        shutil.rmtree(other.dir, ignore_errors=True)


def test_ca_mode_arguments(ca_node, tmp_path):
    node, pki = ca_node
    f = pki.issue("args", "read")
    with pytest.raises(ValueError, match="go together"):
        stream.connect(node.addr, tls_cert=f["tls_cert"], tls_ca=f["tls_ca"])
    with pytest.raises(ValueError, match="exclude each other"):
        stream.connect(node.addr, key=f["tls_key"], server_key="ab" * 32, **f)
    loose = tmp_path / "loose.key"
    shutil.copy(f["tls_key"], loose)
    os.chmod(loose, 0o644)
    with pytest.raises(ValueError, match="is readable by others"):
        stream.connect(node.addr, tls_cert=f["tls_cert"], tls_key=str(loose), tls_ca=f["tls_ca"])


def test_busy_refusal_is_read_inside_tls(go_bins):
    # A server at --max-connections answers the next TLS client with a
    # "server busy" Error inside TLS (not a plain frame TLS cannot read).
    pki = PKI(go_bins, "busy-ca")
    node = Node(go_bins, "busy", pki.server_args("busy") + ["--max-connections", "1"])
    try:
        f = pki.issue("client", "read")
        with stream.connect(node.addr, **f) as held:
            with pytest.raises(StreamError) as e:
                stream.connect(node.addr, timeout=10, **f)
            assert e.value.code == sw.SERVER_BUSY, e.value
            assert "server busy" in e.value.message
            assert held.ping() >= 0
    finally:
        node.stop()
        shutil.rmtree(pki.dir, ignore_errors=True)


def test_private_key_mode_rule():
    from plasmastream._tls import private_mode_ok

    cases = [
        (0o600, 1000, 1000, True),
        (0o400, 0, 1000, True),
        (0o640, 1000, 1000, False),  # a user's own key: 0600
        (0o640, 0, 0, False),  # root's own key: 0600
        (0o440, 0, 65532, True),  # a Kubernetes secret with fsGroup
        (0o660, 0, 65532, False),
        (0o644, 0, 65532, False),
    ]
    for mode, owner, euid, ok in cases:
        assert private_mode_ok(mode, owner, euid) is ok, (oct(mode), owner, euid)
