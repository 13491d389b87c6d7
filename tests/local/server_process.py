"""Runs `python -m chalicelib.local run` as a child process for tests, with a clean environment, and stops it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from chalicelib.local.dynamodb_local import free_port

PROJECT_DIR = Path(__file__).resolve().parents[2]
# Variables of the contract and of the local runtime: never inherited from the developer's shell by a test server.
OWNED_ENV = ("TABLE_NAME", "DYNAMODB_ENDPOINT", "AUTH_JWT_SECRET", "AUTH_ISSUER", "AUTH_JWKS_URL",
             "PORTAL_TOKEN_SECRET", "NODE_WEBHOOK_SECRET", "INBOUND_EMAIL_BUCKET", "ATTACHMENTS_BUCKET",
             "EMAIL_SENDER", "OUTBOX_DIR", "DATA_DIR", "S3_LOCAL_DIR", "HOST", "PORT", "DYNAMODB_LOCAL_PORT",
             "LOCAL_SCHEDULE_SCALE")


def mint(secret: str, issuer: str, tenant: str, roles: list[str] | None, **claims: Any) -> str:
    """A token from chalicelib.tokens.mint_token as if AUTH_JWT_SECRET/AUTH_ISSUER were the given ones."""
    from chalicelib.config import reset_settings
    from chalicelib.tokens import mint_token

    saved = {k: os.environ.get(k) for k in ("AUTH_JWT_SECRET", "AUTH_ISSUER")}
    os.environ.update(AUTH_JWT_SECRET=secret, AUTH_ISSUER=issuer)
    reset_settings()
    try:
        return mint_token(tenant, roles, **claims)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()


class ServerProcess:
    """One local server on a free port; `env` adds to a scrubbed copy of the environment."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, cwd: Path = PROJECT_DIR,
                 port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if k not in OWNED_ENV and not k.startswith("AWS_")}
        self.env.update(HOST="127.0.0.1", PORT=str(self.port), DATA_DIR=str(self.data_dir),
                        PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])),
                        PYTHONUNBUFFERED="1")
        self.env.update(env or {})
        self.log_path = self.data_dir / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "chalicelib.local", "run"], cwd=self.cwd,
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the local server exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            try:
                if requests.get(self.base_url + "/v1/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the local server did not answer within {timeout:.0f}s:\n{self.output()[-3000:]}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, as a process manager would; returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise RuntimeError(
                    f"the local server ignored SIGTERM for {timeout:.0f}s:\n{self.output()[-3000:]}") from None
        return proc.returncode
