"""CORS for browser callers: the headers of every answer and a preflight view for every route path."""
from __future__ import annotations

import re
from typing import Any

from chalice import Response

from chalicelib.config import get_settings

# What the contract's clients send and read (contract §16 "CORS").
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-Match"
EXPOSE_HEADERS = "Idempotent-Replayed, X-Request-Id, Retry-After"
MAX_AGE = "3600"  # seconds a browser may reuse a preflight (Chrome caps it at 7200)


def headers_for(origin: str | None) -> dict[str, str]:
    """The CORS headers of an answer to a request from `origin` (none when that origin is not allowed)."""
    allowed = get_settings().cors_origins
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": EXPOSE_HEADERS}
    # The answer depends on the Origin header: caches must keep one copy per origin.
    headers = {"Vary": "Origin"}
    if origin and origin in {o.rstrip("/") for o in allowed}:  # an Origin never ends in "/"; a setting may
        headers.update({"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSE_HEADERS})
    return headers


def with_cors(response: Response, origin: str | None) -> Response:
    for name, value in headers_for(origin).items():
        if name == "Vary" and response.headers.get("Vary"):
            value = f"{response.headers['Vary']}, {value}"
        response.headers[name] = value
    return response


def register_preflights(app: Any) -> None:
    """An unauthenticated OPTIONS view on every route path, answered by the function itself: the same mechanism
    serves `make run` and API Gateway (no mock integrations), and the allowed origins stay one setting."""
    for path, views in list(app.routes.items()):
        if "OPTIONS" in views:
            continue
        methods = ", ".join([*sorted(views), "OPTIONS"])

        def preflight(methods: str = methods, **_: str) -> Response:
            return Response(body="", status_code=204, headers={
                "Access-Control-Allow-Methods": methods, "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": MAX_AGE, "Allow": methods})

        preflight.__name__ = "options_" + re.sub(r"\W+", "_", path).strip("_").lower()
        # Browsers send no Content-Type on a preflight; accept any, so Chalice never answers 415 to one.
        app.route(path, methods=["OPTIONS"], content_types=["*/*"])(preflight)
