"""Mutual TLS 1.3 with pinned Ed25519 keys, for the stream client
(docs/trust.md; the Go side is internal/trust/cert.go).

A client key file holds an Ed25519 seed (``plasma keygen``). From it we make
a self-signed X.509 certificate carrying the key, which the server checks
against its trust file. The server's certificate is checked here, after
the handshake and before any protocol byte is sent, by its public key
(pinned) and its self-signature; no CA is involved.

Why checking after the handshake is safe: the TLS 1.3 handshake itself
makes the server prove it holds the private key of the certificate it
presented (CertificateVerify, a signature over the transcript, which
OpenSSL checks whatever ``verify_mode`` says; ``CERT_NONE`` only skips the
CA chain). When ``do_handshake`` returns we have sent nothing but our own
certificate, which carries only our public key, and our signature over a
transcript no other server can reuse. Only if the proved key is the
pinned one do we send HELLO; otherwise the socket is closed unused. Early
data (0-RTT) is never sent: the client resumes no session.

Needs the ``cryptography`` package (Debian: python3-cryptography), imported
only when a key is given.
"""

from __future__ import annotations

import datetime
import os
import ssl
import stat
import tempfile
from dataclasses import dataclass

SEED_SIZE = 32
KEY_SIZE = 32  # an Ed25519 public key


def parse_public_key(text) -> bytes:
    """The 32 bytes of a public key written as 64 hex digits (either case),
    or given as 32 bytes."""
    if isinstance(text, (bytes, bytearray)) and len(text) == KEY_SIZE:
        return bytes(text)
    if not isinstance(text, str):
        raise ValueError(f"public key must be 64 hex digits, got {type(text).__name__}")
    s = text.strip()
    try:
        raw = bytes.fromhex(s)
    except ValueError:
        raw = b""
    if len(s) != 2 * KEY_SIZE or len(raw) != KEY_SIZE:
        shown = s if len(s) <= 80 else s[:80] + "..."
        raise ValueError(f"public key {shown!r}: want 64 hex digits")
    return raw


def load_key(path: str):
    """The Ed25519 private key of a key file written by ``plasma keygen``:
    64 hex digits of seed and a newline, mode 0600. A file group or others
    may access is refused (as the Go tools do); a malformed file is refused
    without quoting its content."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = os.path.expanduser(os.fspath(path))
    fd = _open_private(path)
    try:
        data = os.read(fd, 4 * SEED_SIZE + 2)
    finally:
        os.close(fd)
    if data.endswith(b"\r\n"):
        body = data[:-2]
    elif data.endswith(b"\n"):
        body = data[:-1]
    else:
        raise ValueError(f"private key {path} is malformed: want 64 hex digits and a newline")
    try:
        seed = bytes.fromhex(body.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        seed = b""
    if len(body) != 2 * SEED_SIZE or len(seed) != SEED_SIZE:
        raise ValueError(f"private key {path} is malformed: want 64 hex digits and a newline")
    return Ed25519PrivateKey.from_private_bytes(seed)


def private_mode_ok(mode: int, file_uid: int, euid: int) -> bool:
    """PostgreSQL's rule for key files, as the Go servers apply it: mode
    0600 or stricter; or, for a file owned by root and read by another
    user, 0640 or stricter (a Kubernetes secret mounted with fsGroup)."""
    if mode & 0o077 == 0:
        return True
    return file_uid == 0 and euid != 0 and mode & 0o037 == 0


def _open_private(path: str) -> int:
    """An open descriptor of the private key file at path, once checked to
    be a regular file that others may not read (private_mode_ok)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise ValueError(f"private key {path}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"private key {path} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if not private_mode_ok(mode, st.st_uid, os.geteuid()):
            raise ValueError(f"private key {path} is readable by others (mode {mode:04o}): chmod 600 {path}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def public_hex(priv) -> str:
    from cryptography.hazmat.primitives import serialization

    return priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _certificate(priv) -> bytes:
    """A self-signed certificate (PEM) carrying priv's public key, as
    trust.Identity.Certificate makes it. Peers look at the key only."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from cryptography.hazmat.primitives import serialization

    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plasma " + public_hex(priv))])
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(priv.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))  # tolerate skewed clocks
            .not_valid_after(now + datetime.timedelta(days=50 * 365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(priv, None))
    return cert.public_bytes(serialization.Encoding.PEM)


def client_context(priv) -> ssl.SSLContext:
    """A TLS 1.3-only client context presenting priv's certificate. It does
    not verify the server's certificate chain: :func:`check_server` pins
    the server's key instead, before anything is sent."""
    from cryptography.hazmat.primitives import serialization

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # no CA: the key is pinned (check_server)
    key_pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    # load_cert_chain reads files only: a private directory (mode 0700),
    # files created 0600, removed as soon as they are loaded.
    with tempfile.TemporaryDirectory(prefix="plasmatls") as d:
        paths = []
        for fname, data in (("cert.pem", _certificate(priv)), ("key.pem", key_pem)):
            p = os.path.join(d, fname)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            paths.append(p)
        ctx.load_cert_chain(paths[0], paths[1])
    return ctx


@dataclass(frozen=True)
class ClientConfig:
    """What a keyed client connects with: its TLS context and its public
    key (hex, for messages); in CA mode (``ca``) ``public`` is the
    certificate file's path instead, and the context verifies the
    server's chain."""

    context: ssl.SSLContext
    public: str
    ca: bool = False

    def describe(self) -> str:
        return f"certificate {self.public}" if self.ca else f"key {self.public}"


def ca_client_config(cert, key, ca) -> ClientConfig:
    """The client configuration of CA mode (a server started with
    --tls-cert/--tls-key/--tls-ca): this client presents the certificate in
    ``cert`` (PEM; its key in ``key``, mode 0600) and accepts a server whose
    certificate chains to a CA in ``ca``, with server-auth usage. Host names
    are not checked: the CA's signature says who answers, as the Go
    client does (docs/trust.md). Errors name the files, never their
    content."""
    cert, key, ca = (os.path.expanduser(os.fspath(p)) for p in (cert, key, ca))
    os.close(_open_private(key))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as e:
        raise ValueError(f"CA file {ca}: {getattr(e, 'reason', None) or getattr(e, 'strerror', None) or e}") from None
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ValueError(f"certificate {cert} with key {key}: "
                         f"{getattr(e, 'reason', None) or getattr(e, 'strerror', None) or 'does not load'}") from None
    return ClientConfig(ctx, cert, ca=True)


def client_config(path) -> ClientConfig:
    """The client configuration of the key file at path (see load_key)."""
    priv = load_key(path)
    return ClientConfig(client_context(priv), public_hex(priv))


def server_key(der: bytes) -> bytes:
    """The Ed25519 key a peer certificate (DER) carries, once its
    self-signature verified; raises ValueError saying what is wrong."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as e:
        raise ValueError(f"its certificate does not parse: {e}") from None
    pub = cert.public_key()
    if not isinstance(pub, Ed25519PublicKey):
        raise ValueError(f"its certificate carries a {type(pub).__name__} key, not an Ed25519 node key")
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        pub.verify(cert.signature, cert.tbs_certificate_bytes)
    except InvalidSignature:
        raise ValueError(f"its certificate for key {raw.hex()} is not signed by that key") from None
    return raw
