"""Around every route: the request id, the error envelope, CORS, and the request's log line and metrics."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from chalice import Response

from chalicelib import telemetry
from chalicelib.handlers import cors, errors


def handle(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """The answer to `event` with X-Request-Id (API Gateway's request id, or a new one locally), the envelope for
    Chalice's own 404/405/415/500 answers too, CORS for the caller's origin; one log line and metric set per
    request: method, route template, status, latency, tenant, principal, Idempotency-Key, replayed."""
    context = event.context or {}
    request_id = context.get("requestId") or str(uuid.uuid4())
    method, route = event.method, context.get("resourcePath") or event.path
    with telemetry.invocation("request", f"{method} {route}", dimensions={"route": f"{method} {route}"},
                              request_id=request_id, method=method, route=route,
                              idempotency_key=(event.headers or {}).get("idempotency-key")) as seen:
        try:
            response = get_response(event)
        except Exception as exc:  # never a bare 500 without the envelope, the request id or CORS
            response = errors.unexpected(exc)
        response = cors.with_cors(errors.normalise(response, request_id), event.headers.get("origin"))
        status = response.status_code
        seen.note(status=status, replayed=response.headers.get("Idempotent-Replayed") == "true")
        seen.count("Requests")
        seen.count("Errors4xx", int(400 <= status < 500))
        seen.count("Errors5xx", int(status >= 500))
        seen.count("Latency", seen.elapsed_ms, "Milliseconds")
    return response
