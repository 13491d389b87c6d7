"""Environment defaults of the local run: data under DATA_DIR, generated secrets kept there, fake AWS credentials."""
from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Callable, MutableMapping
from pathlib import Path

DEFAULTS = {
    "TABLE_NAME": "nexus-client-management",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AUTH_ISSUER": "nexusrms-local",
    "EMAIL_SENDER": "outbox",
    "INBOUND_EMAIL_BUCKET": "nexus-inbound-email",
    "ATTACHMENTS_BUCKET": "nexus-attachments",
}
# Generated once per DATA_DIR when not given, so tokens, signed webhooks and list cursors stay valid across restarts.
GENERATED_SECRETS: dict[str, tuple[str, Callable[[], str]]] = {
    "AUTH_JWT_SECRET": ("secret", lambda: secrets.token_urlsafe(48)),
    "PORTAL_TOKEN_SECRET": ("portal-token-secret", lambda: secrets.token_urlsafe(48)),
    "CURSOR_SECRET": ("cursor-secret", lambda: secrets.token_urlsafe(48)),
    "NODE_WEBHOOK_SECRET": ("node-webhook-secret",
                            lambda: "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()),
}


def data_dir(environ: MutableMapping[str, str] | None = None) -> Path:
    return Path((os.environ if environ is None else environ).get("DATA_DIR") or "var")


def persisted_secret(path: Path, make: Callable[[], str]) -> str:
    """Read the secret at `path`, creating it (owner-only) on first use."""
    try:
        value = path.read_text().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def chalice_config(project_dir: Path) -> dict:
    """.chalice/config.json as a dict ({} when the project has none yet)."""
    path = project_dir / ".chalice" / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def apply_local_defaults(environ: MutableMapping[str, str] | None = None) -> Path:
    """Fill in what the local run needs; variables already set win. Returns DATA_DIR.

    Unlike `chalice local`, the stage variables of .chalice/config.json are not applied: they describe a deployed
    stage (EMAIL_SENDER=ses, the stage's issuer and buckets), which is not what a laptop should use.
    """
    environ = os.environ if environ is None else environ
    base = data_dir(environ)
    environ["DATA_DIR"] = str(base)
    base.mkdir(parents=True, exist_ok=True)
    for key, value in DEFAULTS.items():
        if not environ.get(key):
            environ[key] = value
    for key, folder in (("S3_LOCAL_DIR", "s3"), ("OUTBOX_DIR", "outbox"), ("LOG_FILE", "logs/service.jsonl"),
                        ("METRICS_FILE", "logs/metrics.jsonl")):
        if not environ.get(key):
            environ[key] = str(base / folder)
    (base / "logs").mkdir(exist_ok=True)
    for key, (filename, make) in GENERATED_SECRETS.items():
        if not environ.get(key):
            environ[key] = persisted_secret(base / filename, make)
    use_fake_aws_credentials(environ)
    return base


def use_fake_aws_credentials(environ: MutableMapping[str, str] | None = None) -> None:
    """The local run must never reach real AWS; DynamoDB Local accepts only letters and digits as access key."""
    environ = os.environ if environ is None else environ
    environ["AWS_ACCESS_KEY_ID"] = "local"
    environ["AWS_SECRET_ACCESS_KEY"] = "local"
    for key in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        environ.pop(key, None)
