"""The one mapping of errors to the contract's envelope `{"error": {code, message, details, request_id}}`."""
from __future__ import annotations

import json
import logging

from chalice import Response
from pydantic import ValidationError

from chalicelib.domain import errors as domain
from chalicelib.domain.errors import BadRequest, DomainError, TooLarge

log = logging.getLogger(__name__)

JSON = "application/json; charset=utf-8"

# Chalice's own error responses ({"Code": ..., "Message": ...}) and what the contract calls them.
_CHALICE_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error",
    429: "rate_limited", 500: "internal_error", 503: "unavailable",
}


class InvalidJson(BadRequest):
    """The body is no JSON object this API reads (not UTF-8, not JSON, too deep)."""

    code = "invalid_json"


class InvalidCursor(BadRequest):
    """A `cursor` this API did not sign for this list, or one it can no longer resume from."""

    code = "invalid_cursor"


class PayloadTooLarge(TooLarge):
    """The body is larger than the route takes."""


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


# The one place a kind of error gets its HTTP status (an error's class or its nearest listed ancestor decides).
STATUS: dict[type[DomainError], int] = {
    domain.BadRequest: 400, domain.Unauthorized: 401, domain.Forbidden: 403, domain.NotFound: 404,
    domain.Conflict: 409, domain.VersionConflict: 412, domain.StaleVersion: 412, domain.TooLarge: 413,
    UnsupportedMediaType: 415, domain.ValidationFailed: 422, domain.RateLimited: 429, domain.Unavailable: 503,
}


def status_of(exc: DomainError) -> int:
    return next((STATUS[kind] for kind in type(exc).__mro__ if kind in STATUS), 400)


def envelope(status: int, code: str, message: str, details: list | None = None,
             headers: dict | None = None) -> Response:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return Response(body=json.dumps(body), status_code=status, headers={"Content-Type": JSON, **(headers or {})})


def from_domain(exc: DomainError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return envelope(status_of(exc), exc.code, exc.message, exc.details, headers=headers)


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if p not in ("body", "[key]")) or "body"  # a bad key: its field, named


def details_of(exc: ValidationError, read_only: frozenset[str] = frozenset()) -> list[dict]:
    out = []
    for err in exc.errors():
        field = _loc(err["loc"])
        if err["type"] == "extra_forbidden":
            message = "is read-only" if field in read_only else "is not a known field"
        else:
            message = err["msg"].removeprefix("Value error, ")
        out.append({"field": field, "message": message})
    return out


def from_validation(exc: ValidationError, read_only: frozenset[str] = frozenset()) -> Response:
    details = details_of(exc, read_only)
    fields = ", ".join(sorted({d["field"] for d in details}))
    return envelope(422, "validation_error", f"invalid fields: {fields}", details)


def unexpected(exc: Exception) -> Response:
    log.exception("unhandled error: %s", exc)
    return envelope(500, "internal_error", "an internal error occurred")


def normalise(response: Response, request_id: str) -> Response:
    """Every answer carries X-Request-Id; every error body is the envelope (Chalice's own 405, 415, 500... are
    rewritten) and repeats the request id as `error.request_id`."""
    response.headers["X-Request-Id"] = request_id
    if response.status_code < 400:
        return response
    body = response.body
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    if not (isinstance(body, dict) and isinstance(body.get("error"), dict)):
        message = body.get("Message") if isinstance(body, dict) else None
        status = response.status_code
        extra = {k: v for k, v in response.headers.items() if k.lower() in ("allow", "x-request-id")}
        response = envelope(status, _CHALICE_CODES.get(status, "error"), message or "request failed", headers=extra)
        body = json.loads(response.body)
    if response.status_code >= 500:
        log.error("answered %s to request %s", response.status_code, request_id)
    body["error"]["request_id"] = request_id
    response.body = json.dumps(body)
    return response
