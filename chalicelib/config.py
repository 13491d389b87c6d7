"""Runtime settings read from the environment on first use, never at import time."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Settings:
    table_name: str
    dynamodb_endpoint: str | None
    region: str
    auth_jwt_secret: str
    auth_issuer: str
    auth_jwks_url: str | None
    portal_token_secret: str
    node_webhook_secret: str
    inbound_email_bucket: str
    attachments_bucket: str
    email_sender: str
    data_dir: str
    outbox_dir: str
    s3_local_dir: str | None

    @property
    def portal_secret(self) -> str:
        """PORTAL_TOKEN_SECRET; without one (tests, a bare local run) a key derived from the JWT secret."""
        return self.portal_token_secret or ("portal:" + self.auth_jwt_secret if self.auth_jwt_secret else "")

    @property
    def cursor_secret(self) -> bytes:
        # Cursors are signed with a key derived from the JWT secret, so one secret serves both.
        return ("cursor:" + self.auth_jwt_secret).encode()


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    data_dir = _env("DATA_DIR", "var")
    return Settings(
        table_name=_env("TABLE_NAME", "nexus-client-management"),
        dynamodb_endpoint=_env("DYNAMODB_ENDPOINT"),
        region=_env("AWS_DEFAULT_REGION", _env("AWS_REGION", "eu-west-1")),
        auth_jwt_secret=_env("AUTH_JWT_SECRET", ""),
        auth_issuer=_env("AUTH_ISSUER", "nexusrms-local"),
        auth_jwks_url=_env("AUTH_JWKS_URL"),
        portal_token_secret=_env("PORTAL_TOKEN_SECRET", ""),
        node_webhook_secret=_env("NODE_WEBHOOK_SECRET", ""),
        inbound_email_bucket=_env("INBOUND_EMAIL_BUCKET", "nexus-inbound-email"),
        attachments_bucket=_env("ATTACHMENTS_BUCKET", "nexus-attachments"),
        email_sender=_env("EMAIL_SENDER", "outbox"),
        data_dir=data_dir,
        outbox_dir=_env("OUTBOX_DIR", os.path.join(data_dir, "outbox")),
        s3_local_dir=_env("S3_LOCAL_DIR"),
    )


def reset_settings() -> None:
    """Forget cached settings (tests and the local runner change the environment)."""
    get_settings.cache_clear()
