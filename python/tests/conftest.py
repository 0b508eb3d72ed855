"""Fixtures: the Go binaries (built once per session) and a fresh
plasma-store-server per test on a temporary socket."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

PYDIR = Path(__file__).resolve().parent.parent  # python/
REPO = PYDIR.parent
sys.path.insert(0, str(PYDIR))  # test the source tree without installing

import plasmastream  # noqa: E402


def _go() -> str:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.path.exists(go):
        pytest.fail("the tests need the Go toolchain to build plasma-store-server")
    return go


@pytest.fixture(scope="session")
def go_bins():
    """Directory with plasma-store-server, plasma and gohelper."""
    d = tempfile.mkdtemp(prefix="psbin")
    try:
        go = _go()
        for cmd in ([go, "build", "-o", d + "/", "./cmd/..."],
                    [go, "build", "-o", os.path.join(d, "gohelper"), "./python/tests/gohelper"]):
            r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
            if r.returncode != 0:
                pytest.fail(f"{' '.join(cmd)} failed:\n{r.stderr}")
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Store:
    """A running plasma-store-server on a temporary socket."""

    def __init__(self, bins: str, memory: str = "64MiB"):
        self.dir = tempfile.mkdtemp(prefix="ps")
        self.socket = os.path.join(self.dir, "s.sock")
        self.log = open(os.path.join(self.dir, "store.log"), "w+")
        self.proc = subprocess.Popen(
            [os.path.join(bins, "plasma-store-server"), "-m", memory, "-s", self.socket,
             "-d", "/dev/shm", "--log-level", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"plasma-store-server exited: {self.log.read()}")
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.socket)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("plasma-store-server did not start listening")
                time.sleep(0.01)

    def connect(self):
        return plasmastream.connect(self.socket)

    def stop(self):
        stop_process(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s; reaps the process."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def store(go_bins):
    s = Store(go_bins)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def client(store):
    c = store.connect()
    try:
        yield c
    finally:
        c.disconnect()


class Child:
    """Another Python process running ``code`` with ``SOCKET`` defined,
    talking through stdin/stdout lines."""

    def __init__(self, code: str, sock: str, **env):
        e = dict(os.environ, PYTHONPATH=str(PYDIR), PYTHONUNBUFFERED="1", PS_SOCKET=sock)
        e.update({k: str(v) for k, v in env.items()})
        prelude = "import os, sys\nimport plasmastream as ps\nSOCKET = os.environ['PS_SOCKET']\n"
        self.proc = subprocess.Popen([sys.executable, "-c", prelude + code], env=e, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"child did not say {prefix!r} within {timeout} s") from None
            if line is None:
                self.proc.wait(5)
                raise AssertionError(f"child exited ({self.proc.returncode}) before {prefix!r}: {self.proc.stderr.read()}")
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def send(self, line: str = "") -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except Exception:
                pass


@pytest.fixture
def child():
    """Factory of Child processes, killed at the end of the test."""
    made = []

    def make(code: str, sock: str, **env) -> Child:
        c = Child(code, sock, **env)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def wait_until(cond, timeout: float = 10, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
