"""Domain errors; the HTTP layer maps each to the contract's status and code in one place."""
from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"
    retry_after: int | None = None  # seconds, answered as Retry-After

    def __init__(self, message: str, details: list[dict] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []
        if code:
            self.code = code


class BadRequest(DomainError):
    status, code = 400, "bad_request"


class InvalidJson(DomainError):
    status, code = 400, "invalid_json"


class InvalidCursor(DomainError):
    status, code = 400, "invalid_cursor"


class Unauthorized(DomainError):
    status, code = 401, "unauthorized"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class NotFound(DomainError):
    status, code = 404, "not_found"


class Conflict(DomainError):
    """A broken business rule; `code` names the rule (primary_contact, portal_disabled...)."""

    status, code = 409, "conflict"

    def __init__(self, code: str, message: str, details: list[dict] | None = None):
        super().__init__(message, details, code=code)


class InProgress(Conflict):
    """The same delivery or request is being applied right now: retry after `retry_after` seconds."""

    retry_after = 5


class VersionConflict(DomainError):
    status, code = 412, "version_conflict"


class StaleVersion(DomainError):
    """A stale `If-Match`: answered 412 like a VersionConflict, but never retried."""

    status, code = 412, "version_conflict"


class PayloadTooLarge(DomainError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(DomainError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(DomainError):
    status, code = 422, "validation_error"

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", [{"field": field, "message": message}])


class Unavailable(DomainError):
    status, code = 503, "unavailable"


class Contention(Unavailable):
    """An optimistic write kept losing races until its time budget ran out; its last attempt wrote nothing."""
