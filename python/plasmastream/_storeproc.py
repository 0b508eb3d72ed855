"""``start_plasma_store``: run a plasma-store-server for the length of a
``with`` block, as pyarrow.plasma's did with its C++ store."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["start_plasma_store", "store_server_binary"]

BINARY = "plasma-store-server"
ENV_BINARY = "PLASMASTREAM_STORE_SERVER"
_START_TIMEOUT = 30.0
_SOURCE = Path(__file__).resolve().parent.parent.parent  # the repository, in a source checkout


def store_server_binary() -> str:
    """The plasma-store-server to run: $PLASMASTREAM_STORE_SERVER, else the
    one on PATH, else (in a source checkout with Go installed) one built from
    the checkout into ~/.cache/plasmastream/bin."""
    path = os.environ.get(ENV_BINARY)
    if path:
        if not os.access(path, os.X_OK):
            raise FileNotFoundError(f"${ENV_BINARY} is {path!r}, which is not an executable file")
        return path
    found = shutil.which(BINARY)
    if found:
        return found
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
    if go and (_SOURCE / "cmd" / BINARY).is_dir():
        out = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "plasmastream" / "bin"
        out.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([go, "build", "-o", str(out / BINARY), "./cmd/" + BINARY], cwd=_SOURCE,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"building {BINARY} from {_SOURCE} failed:\n{r.stderr}")
        return str(out / BINARY)
    raise FileNotFoundError(
        f"{BINARY} not found: put it on PATH or set ${ENV_BINARY} to its path "
        f"(build it with `go build -o bin/ ./cmd/...` in the plasmastream repository)")


def _wait_listening(path: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"plasma_store exited unexpectedly with code {proc.returncode} "
                               f"(its error is on standard error)")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{BINARY} did not listen on {path} within {_START_TIMEOUT:.0f} s")
            time.sleep(0.01)


@contextlib.contextmanager
def start_plasma_store(plasma_store_memory, use_valgrind=False, use_profiler=False,
                       plasma_directory=None, use_hugepages=False, external_store=None):
    """Start a plasma-store-server of ``plasma_store_memory`` bytes on a
    socket in a fresh temporary directory; yields ``(socket name, process)``
    once it accepts connections, and stops it (SIGTERM, then SIGKILL after
    5 s) and removes the directory when the block ends.

    ``plasma_directory`` is the directory of its shared-memory file (-d;
    /dev/shm by default), ``use_hugepages`` backs it with huge pages.
    ``external_store`` is the store's cold tier (-e, docs/cold-tier.md):
    ``file:///DIR`` or ``s3://BUCKET/PREFIX``; pyarrow's test-only
    ``hashtable://NAME`` becomes a ``file://`` tier in the temporary
    directory, gone with the store. Evicted objects go there and come back,
    verified, at their next get. ``use_valgrind`` and ``use_profiler`` are
    not supported (the store is a Go program) and raise
    ``NotImplementedError`` saying so."""
    if use_valgrind and use_profiler:
        raise Exception("Cannot use valgrind and profiler at the same time.")
    if use_valgrind or use_profiler:
        raise NotImplementedError(
            "plasma-store-server is a Go program: run it under valgrind is not useful; profile it with "
            "`go tool pprof` or `perf` instead of use_valgrind/use_profiler")
    if external_store is not None and not str(external_store).startswith(("file://", "s3://", "hashtable://")):
        raise ValueError(f"external_store={external_store!r}: want file:///DIR, s3://BUCKET/PREFIX or hashtable://NAME")
    tmpdir = tempfile.mkdtemp(prefix="test_plasma-")
    proc = None
    try:
        name = os.path.join(tmpdir, "plasma.sock")
        cmd = [store_server_binary(), "-s", name, "-m", str(int(plasma_store_memory)), "--log-level", "warn"]
        if plasma_directory:
            cmd += ["-d", str(plasma_directory)]
        if use_hugepages:
            cmd += ["--hugepages"]
        if external_store is not None:
            tier = str(external_store)
            if tier.startswith("hashtable://"):
                cold = os.path.join(tmpdir, "cold")
                os.mkdir(cold)
                tier = "file://" + cold
            cmd += ["-e", tier]
        proc = subprocess.Popen(cmd)  # its warnings and errors go to our standard error
        _wait_listening(name, proc)
        yield name, proc
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmpdir, ignore_errors=True)
