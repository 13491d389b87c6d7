"""Domain errors: what went wrong, by kind and `code`; handlers/errors.py alone chooses each kind's HTTP status."""
from __future__ import annotations


class DomainError(Exception):
    code = "bad_request"
    retry_after: int | None = None  # seconds: when trying again may succeed

    def __init__(self, message: str, details: list[dict] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []
        if code:
            self.code = code


class BadRequest(DomainError):
    """The request cannot be understood as asked (a parameter, a header, an unusable file)."""

    code = "bad_request"


class Unauthorized(DomainError):
    """Who is asking is unknown: no, a wrong or an expired credential (a token, an invitation)."""

    code = "unauthorized"


class Forbidden(DomainError):
    """Who is asking is known, and may not do this."""

    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    """A broken business rule; `code` names the rule (primary_contact, portal_disabled...)."""

    code = "conflict"

    def __init__(self, code: str, message: str, details: list[dict] | None = None):
        super().__init__(message, details, code=code)


class InProgress(Conflict):
    """The same delivery or request is being applied right now: retry after `retry_after` seconds."""

    retry_after = 5


class VersionConflict(DomainError):
    """The record changed since it was read: an optimistic write lost a race (retried) or a stale `If-Match`."""

    code = "version_conflict"


class StaleVersion(DomainError):
    """A stale `If-Match`: answered like a VersionConflict, but no VersionConflict, so never retried."""

    code = "version_conflict"


class TooLarge(DomainError):
    """More than one request may carry (bytes, rows)."""

    code = "payload_too_large"


class ValidationFailed(DomainError):
    code = "validation_error"

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", [{"field": field, "message": message}])


class RateLimited(DomainError):
    """A rate limit was reached; nothing was done. `retry_after` says when the window has room again."""

    code = "rate_limited"


class Unavailable(DomainError):
    """The database or another service did not answer in time; what the request wrote is said in the message."""

    code = "unavailable"


class Contention(Unavailable):
    """An optimistic write kept losing races until its time budget ran out; its last attempt wrote nothing."""
