"""Fetches Amazon's DynamoDB Local from the npm registry into a project cache, and runs it as a child process."""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

log = logging.getLogger("nexus.local.ddb")

PACKAGE = "amplify-dynamodb-simulator@2.9.30"
TARBALL_SHA256 = "3503ffac19f183407909fecdacf4db51ab1fdad1da7b2f177016670b2d80e4b9"
JAVA_REQUIRED = "Java 17 is required for DynamoDB Local: apt-get install openjdk-17-jre-headless"
DEFAULT_RUN_PORT = 8001
PROJECT_DIR = Path(__file__).resolve().parents[2]


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local cannot be fetched or started; the message is meant for the person at the terminal."""


def cache_dir() -> Path:
    return Path(os.environ.get("DYNAMODB_LOCAL_CACHE") or PROJECT_DIR / ".cache" / "dynamodb-local")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Parallel test workers may all fetch on first use; one downloads, the others wait and reuse.
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_emulator() -> Path:
    """Return the directory holding DynamoDBLocal.jar and DynamoDBLocal_lib/, fetching it on first use."""
    root = cache_dir()
    target = root / PACKAGE.replace("@", "-")
    marker = target / ".sha256"
    if marker.is_file() and marker.read_text().strip() == TARBALL_SHA256:
        return target
    with _locked(root):
        if marker.is_file() and marker.read_text().strip() == TARBALL_SHA256:
            return target
        npm = shutil.which("npm")
        if npm is None:
            raise DynamoDBLocalError("npm is required to fetch DynamoDB Local (apt-get install npm), "
                                     "or set DYNAMODB_ENDPOINT to a running DynamoDB")
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            log.info("fetching DynamoDB Local (%s) into %s", PACKAGE, root)
            done = subprocess.run([npm, "pack", PACKAGE, "--pack-destination", tmp, "--silent"],
                                  capture_output=True, text=True, cwd=tmp)
            tarballs = list(Path(tmp).glob("*.tgz"))
            if done.returncode != 0 or len(tarballs) != 1:
                raise DynamoDBLocalError(f"npm pack {PACKAGE} failed: {done.stderr.strip()[-500:]}")
            actual = _sha256(tarballs[0])
            if actual != TARBALL_SHA256:
                raise DynamoDBLocalError(f"{PACKAGE} has sha256 {actual}, expected {TARBALL_SHA256}; not using it")
            staging = Path(tmp) / "out"
            _extract(tarballs[0], staging)
            if target.exists():
                shutil.rmtree(target)
            (staging / ".sha256").write_text(TARBALL_SHA256 + "\n")
            staging.rename(target)
    return target


def _extract(tarball: Path, dest: Path) -> None:
    prefix = "package/emulator/"
    with tarfile.open(tarball, "r:gz") as tar:
        members = []
        for member in tar.getmembers():
            rel = member.name[len(prefix):] if member.name.startswith(prefix) else ""
            if rel == "DynamoDBLocal.jar" or rel.startswith("DynamoDBLocal_lib/"):
                member.name = rel
                members.append(member)
        tar.extractall(dest, members=members, filter="data")
    if not (dest / "DynamoDBLocal.jar").is_file():
        raise DynamoDBLocalError("the DynamoDB Local package has no emulator/DynamoDBLocal.jar")


def find_java() -> str:
    """Path of a Java 17+ runtime, or DynamoDBLocalError with the one-line install hint."""
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalError(JAVA_REQUIRED)
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(found.group(1)) if found else 0
    if major == 1 and found and found.group(2):  # "1.8.0_x" style
        major = int(found.group(2))
    if major < 17:
        raise DynamoDBLocalError(JAVA_REQUIRED)
    return java


def _die_with_parent() -> None:
    # If the runner is killed hard, the JVM must not live on holding the port and the database.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class DynamoDBLocal:
    """One DynamoDB Local process: persistent under db_path with -sharedDb, or in memory."""

    def __init__(self, port: int | None = None, db_path: str | os.PathLike | None = None,
                 log_path: str | os.PathLike | None = None, start_timeout: float = 60.0,
                 quick_start: bool | None = None) -> None:
        self.port = port or free_port()
        self.db_path = Path(db_path).resolve() if db_path else None  # java runs in the emulator dir
        self.log_path = Path(log_path) if log_path else None
        self.start_timeout = start_timeout
        # In-memory instances serve short test sessions by default: a quick JVM start (C1 only) beats peak
        # throughput there. Benchmarks ask for the full JIT, as a long-running `make run` has (30% faster writes).
        self.quick_start = self.db_path is None if quick_start is None else quick_start
        self._proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, java: str, emulator: Path) -> list[str]:
        storage = ["-dbPath", str(self.db_path)] if self.db_path else ["-inMemory"]
        quick_start = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"] if self.quick_start else []
        return [java, *quick_start, f"-Djava.library.path={emulator / 'DynamoDBLocal_lib'}", "-jar",
                str(emulator / "DynamoDBLocal.jar"), "-sharedDb", *storage,
                "-port", str(self.port), "-disableTelemetry"]

    def start(self) -> DynamoDBLocal:
        java = find_java()
        emulator = ensure_emulator()
        if port_in_use(self.port):
            raise DynamoDBLocalError(f"port {self.port} is already in use; set DYNAMODB_LOCAL_PORT to another "
                                     "port, or DYNAMODB_ENDPOINT to reuse a running DynamoDB Local")
        if self.db_path:
            self.db_path.mkdir(parents=True, exist_ok=True)
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "a+b")
        else:
            self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            self.command(java, emulator), cwd=emulator, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        log.info("DynamoDB Local on %s (%s)", self.endpoint, self.db_path or "in memory")
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        request = urllib.request.Request(
            self.endpoint, data=b"{}", method="POST",
            headers={"X-Amz-Target": "DynamoDB_20120810.ListTables",
                     "Content-Type": "application/x-amz-json-1.0",
                     "Authorization": "AWS4-HMAC-SHA256 Credential=local/20200101/eu-west-1/dynamodb/aws4_request, "
                                      "SignedHeaders=host, Signature=0"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an HTTP proxy
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise DynamoDBLocalError(f"DynamoDB Local exited at start: {self._output_tail()}")
            try:
                with opener.open(request, timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # any HTTP answer means the server is up
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise DynamoDBLocalError(f"DynamoDB Local did not answer on {self.endpoint} within "
                                 f"{self.start_timeout:.0f}s: {self._output_tail()}")

    def _output_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-1500:].strip()

    def stop(self, timeout: float = 15.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
