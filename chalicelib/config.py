"""Runtime settings: one pydantic model read from the environment on first use, never at import time."""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator


class ConfigurationError(RuntimeError):
    """A required setting (usually a secret) is missing: the function cannot serve anything safely."""


def _comma_list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


class Settings(BaseModel):
    """Every variable of the environment the service reads (names: the field names, upper-cased, or their alias).

    Read as pydantic-settings would (names in any case, empty values unset, defaults validated too), without its
    import: that one costs a cold start more than the rest of the settings together."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_default=True, defer_build=True)

    table_name: str = "nexus-client-management"
    dynamodb_endpoint: str | None = None
    region: str = Field("eu-west-1", validation_alias=AliasChoices("AWS_DEFAULT_REGION", "AWS_REGION"))
    # Staff and integration tokens: HS256 with AUTH_JWT_SECRET locally, RS256 from AUTH_JWKS_URL (Cognito) in AWS.
    auth_jwt_secret: str = ""
    auth_issuer: str = "nexusrms-local"
    auth_jwks_url: str | None = None
    auth_audience: str = ""  # comma list of Cognito app client ids; empty: `aud` is not checked
    cors_allow_origins: str = "*"  # comma list of origins allowed to call the API from a browser
    # Secrets of this service; each falls back to one derived from AUTH_JWT_SECRET (tests, a bare local run).
    cursor_secret_key: str = Field("", validation_alias="CURSOR_SECRET")
    portal_token_secret: str = ""
    node_webhook_secret: str = ""
    inbound_email_bucket: str = "nexus-inbound-email"
    attachments_bucket: str = "nexus-attachments"
    email_sender: str = "outbox"
    data_dir: str = "var"
    outbox_dir: str = ""
    s3_local_dir: str | None = None
    # A larger export goes to S3 behind a link: Lambda answers at most 6 MB, and the CSV travels base64 (+1/3).
    export_inline_max_bytes: int = Field(4 * 1024 * 1024, ge=0)
    jobs_queue_url: str | None = None  # the jobs queue (SQS); unset: the folder queue under DATA_DIR/jobs/
    # Database calls: per-attempt timeouts and a total budget that ends well inside the function's timeout.
    db_connect_timeout: float = Field(2.0, gt=0)
    db_read_timeout: float = Field(5.0, gt=0)
    db_retry_budget: float = Field(20.0, gt=0)
    function_timeout: float = Field(30.0, gt=0)  # the Lambda's own timeout (seconds), set by the template
    # Rate limits (OWASP API4), fixed windows: 429 `rate_limited` with Retry-After beyond them (domain/rate_limits).
    # A contact needs one or two invitations a day (a link lives 7 days; a resend voids older ones): 5 leaves room
    # for retries and stops a script or a stolen agent token from mail-bombing one person from our domain.
    invitations_per_contact_per_day: int = Field(5, ge=1)
    # Staff send one email at a time; 1/s sustained is far above that, and keeps one tenant from spending the
    # account's SES sending rate (14/s by default, shared by every tenant). Invitations count here too.
    emails_per_tenant_per_minute: int = Field(60, ge=1)
    # Telemetry (chalicelib/telemetry.py): JSON lines on stdout (LOG_FORMAT=text for people), EMF metrics.
    log_level: str = "INFO"
    log_format: str = "json"          # or "text"
    log_file: str | None = None       # also append the JSON lines here (the local run: DATA_DIR/logs/)
    metrics_file: str | None = None   # EMF lines here instead of stdout (the local run)
    metrics_namespace: str = Field("NexusRMS/ClientManagement/local",
                                   validation_alias=AliasChoices("POWERTOOLS_METRICS_NAMESPACE", "METRICS_NAMESPACE"))
    build_version: str = "local"      # the commit the package was built from (the template sets it)
    stage: str = "local"

    @property
    def request_db_budget(self) -> float:
        """The seconds one request's database calls share: DB_RETRY_BUDGET, cut so that it ends one attempt and a
        second before the function's timeout."""
        return max(0.0, min(self.db_retry_budget, self.function_timeout - self.db_attempt_seconds - 1))

    @property
    def db_attempt_seconds(self) -> float:
        """The longest one database attempt takes: connecting, then reading."""
        return self.db_connect_timeout + self.db_read_timeout

    @model_validator(mode="after")
    def _derived_defaults(self) -> Settings:
        if not self.outbox_dir:
            object.__setattr__(self, "outbox_dir", os.path.join(self.data_dir, "outbox"))
        return self

    @property
    def audiences(self) -> tuple[str, ...]:
        return _comma_list(self.auth_audience)

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return _comma_list(self.cors_allow_origins)

    @property
    def portal_secret(self) -> str:
        """PORTAL_TOKEN_SECRET; without one, a key derived from the JWT secret; with neither, a ConfigurationError."""
        return self.portal_token_secret or self._derived("portal", "PORTAL_TOKEN_SECRET")

    @property
    def cursor_secret(self) -> bytes:
        """CURSOR_SECRET (generated per stack in AWS); locally a key derived from the JWT secret."""
        return (self.cursor_secret_key or self._derived("cursor", "CURSOR_SECRET")).encode()

    def _derived(self, purpose: str, name: str) -> str:
        if not self.auth_jwt_secret:
            raise ConfigurationError(f"{name} is not set (and there is no AUTH_JWT_SECRET to derive it from)")
        return f"{purpose}:{self.auth_jwt_secret}"


def _from_environment() -> dict[str, Any]:
    """The environment's value of each field, keyed as the model reads it: the first of its names (the alias
    choices, else the field name) set to a non-empty value, matched ignoring case."""
    environ = {name.lower(): value for name, value in os.environ.items()}
    found: dict[str, Any] = {}
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        names = ([a for a in alias.choices if isinstance(a, str)] if isinstance(alias, AliasChoices)
                 else [alias] if isinstance(alias, str) else [name])
        for key in names:
            if environ.get(key.lower()):
                found[key] = environ[key.lower()]
                break
    return found


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.model_validate(_from_environment())


def reset_settings() -> None:
    """Forget cached settings (tests and the local runner change the environment)."""
    get_settings.cache_clear()
