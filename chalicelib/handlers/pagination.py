"""Opaque, tamper-proof list cursors: base64url JSON signed with HMAC-SHA256, bound to tenant and query."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, Callable

from chalicelib.config import get_settings
from chalicelib.domain.errors import InvalidCursor


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: bytes) -> bytes:
    return hmac.new(get_settings().cursor_secret, payload, hashlib.sha256).digest()


def encode_cursor(tenant_id: str, scope: str, position: Any) -> str:
    payload = json.dumps({"t": tenant_id, "s": scope, "p": position}, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_sign(payload))}"


def decode_cursor(cursor: str | None, tenant_id: str, scope: str) -> Any:
    """The position inside a cursor issued to this tenant for this same query, or 400 `invalid_cursor`."""
    if not cursor:
        return None
    try:
        payload_text, signature = cursor.split(".")
        payload = _unb64(payload_text)
        if not hmac.compare_digest(_unb64(signature), _sign(payload)):
            raise ValueError("signature")
        data = json.loads(payload)
    except (ValueError, TypeError):
        raise InvalidCursor("the cursor is not valid", [{"field": "cursor", "message": "is not valid"}]) from None
    if data.get("t") != tenant_id or data.get("s") != scope:
        raise InvalidCursor("the cursor belongs to another list", [{"field": "cursor", "message": "is foreign"}])
    return data.get("p")


def query_scope(route: str, params: dict[str, Any]) -> str:
    """A short digest of a list query (without cursor and limit) that cursors are bound to."""
    relevant = {k: v for k, v in sorted(params.items()) if k not in ("cursor", "limit") and v is not None}
    return hashlib.sha256(json.dumps([route, relevant], default=str).encode()).hexdigest()[:16]


def page_of_list(items: list, position: Callable[[Any], list], *, tenant_id: str, scope: str, limit: int,
                 cursor: str | None, descending: bool = False) -> tuple[list, str | None]:
    """A page of a list already in order (ascending or descending by `position`), resumed after the cursor."""
    after = decode_cursor(cursor, tenant_id, scope)
    if after:
        items = [x for x in items if (position(x) < after if descending else position(x) > after)]
    page = items[:limit]
    more = len(items) > limit
    return page, encode_cursor(tenant_id, scope, position(page[-1])) if more else None
