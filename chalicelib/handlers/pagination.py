"""Opaque, tamper-proof list cursors: base64url JSON signed with HMAC-SHA256, bound to tenant and query."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from typing import Any

from chalicelib.config import get_settings
from chalicelib.handlers.errors import InvalidCursor


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: bytes) -> bytes:
    return hmac.new(get_settings().cursor_secret, payload, hashlib.sha256).digest()


def encode_cursor(tenant_id: str, scope: str, position: Any) -> str:
    payload = json.dumps({"t": tenant_id, "s": scope, "p": position}, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_sign(payload))}"


# The shape of a list's position, checked before any list uses one: a DynamoDB exclusive start key
# ({attribute: {"S": text}}, with pk and sk), any list of texts and integers, or a list of exactly these types.
START_KEY = "start key"
ANY_LIST = "any list"
Shape = str | tuple[type, ...]

MAX_CURSOR = 4096  # characters; far above any position this service writes
_KEY_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MAX_KEY_BYTES = 2048  # DynamoDB's limit for a partition key (a sort key's is 1024)


def _invalid(message: str = "the cursor is not valid", detail: str = "is not valid") -> InvalidCursor:
    return InvalidCursor(message, [{"field": "cursor", "message": detail}])


def decode_cursor(cursor: str | None, tenant_id: str, scope: str, shape: Shape = START_KEY) -> Any:
    """The position inside a cursor issued to this tenant for this same query, of the `shape` the list uses, or
    400 `invalid_cursor` (never anything else, whatever the cursor holds)."""
    if not cursor:
        return None
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR:
        raise _invalid()
    try:
        payload_text, signature = cursor.split(".")
        payload = _unb64(payload_text)
        if not hmac.compare_digest(_unb64(signature), _sign(payload)):
            raise ValueError("signature")
        data = json.loads(payload)
    except (ValueError, TypeError, RecursionError):
        raise _invalid() from None
    if not isinstance(data, dict):
        raise _invalid()
    if data.get("t") != tenant_id or data.get("s") != scope:
        raise _invalid("the cursor belongs to another list", "is foreign")
    position = data.get("p")
    if not _fits(position, shape):
        raise _invalid()
    return position


def _fits(position: Any, shape: Shape) -> bool:
    if shape == START_KEY:
        return isinstance(position, dict) and 2 <= len(position) <= 4 and {"pk", "sk"} <= position.keys() \
            and all(isinstance(name, str) and _KEY_NAME.fullmatch(name) and _key_value(value)
                    for name, value in position.items())
    if not isinstance(position, list) or not 1 <= len(position) <= 8 \
            or not all(_scalar(v) for v in position):
        return False
    return shape == ANY_LIST or (len(position) == len(shape) and all(
        type(v) is t for v, t in zip(position, shape, strict=True)))


def _key_value(value: Any) -> bool:
    return isinstance(value, dict) and value.keys() == {"S"} and _text(value["S"], 1, _MAX_KEY_BYTES)


def _scalar(value: Any) -> bool:
    if type(value) is int:
        return -2 ** 63 <= value < 2 ** 63
    return _text(value, 1, _MAX_KEY_BYTES // 2)  # a sort key's limit; every position ends in an id


def _text(value: Any, shortest: int, longest: int) -> bool:
    """Text of UTF-8 length within bounds (a lone surrogate, which JSON allows, is not text DynamoDB takes)."""
    try:
        return type(value) is str and shortest <= len(value.encode("utf-8")) <= longest
    except UnicodeEncodeError:
        return False


def query_scope(route: str, params: dict[str, Any]) -> str:
    """A short digest of a list query (without cursor and limit) that cursors are bound to."""
    relevant = {k: v for k, v in sorted(params.items()) if k not in ("cursor", "limit") and v is not None}
    return hashlib.sha256(json.dumps([route, relevant], default=str).encode()).hexdigest()[:16]


def page_of_list(items: list, position: Callable[[Any], list], *, tenant_id: str, scope: str, limit: int,
                 cursor: str | None, descending: bool = False) -> tuple[list, str | None]:
    """A page of a list already in order (ascending or descending by `position`), resumed after the cursor."""
    # The cursor's position must be comparable with this list's own positions: same length, same types.
    shape = tuple(type(v) for v in position(items[0])) if items else ANY_LIST
    after = decode_cursor(cursor, tenant_id, scope, shape)
    if after:
        items = [x for x in items if (list(position(x)) < after if descending else list(position(x)) > after)]
    page = items[:limit]
    more = len(items) > limit
    return page, encode_cursor(tenant_id, scope, list(position(page[-1]))) if more else None
