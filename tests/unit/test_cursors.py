"""List cursors are opaque and tamper-proof: only this tenant's cursor of this same query is accepted."""
from __future__ import annotations

import base64
import json

import pytest

from chalicelib.config import reset_settings
from chalicelib.domain.errors import InvalidCursor
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, query_scope

SCOPE = query_scope("clients", {"status": ["active"], "sort": "name"})


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("AUTH_JWT_SECRET", "unit-test-secret-of-enough-length")
    reset_settings()
    yield
    reset_settings()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _payload(cursor: str) -> dict:
    text = cursor.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def test_a_cursor_gives_back_its_position_to_the_same_tenant_and_query():
    cursor = encode_cursor("t1", SCOPE, ["acme#01A", "01A"])
    assert decode_cursor(cursor, "t1", SCOPE) == ["acme#01A", "01A"]


def test_no_cursor_means_the_first_page():
    assert decode_cursor(None, "t1", SCOPE) is None
    assert decode_cursor("", "t1", SCOPE) is None


def test_a_cursor_is_url_safe_text():
    cursor = encode_cursor("t1", SCOPE, ["ünïcode name #?&/+", "01A"])
    assert all(c.isalnum() or c in "-_." for c in cursor)


def test_edited_position_is_rejected():
    cursor = encode_cursor("t1", SCOPE, ["acme#01A", "01A"])
    data = _payload(cursor)
    data["p"] = ["zzz#01Z", "01Z"]
    forged = _b64(json.dumps(data, separators=(",", ":")).encode()) + "." + cursor.split(".")[1]
    with pytest.raises(InvalidCursor):
        decode_cursor(forged, "t1", SCOPE)


def test_edited_signature_is_rejected():
    cursor = encode_cursor("t1", SCOPE, ["acme#01A", "01A"])
    payload, signature = cursor.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(InvalidCursor):
        decode_cursor(f"{payload}.{flipped}", "t1", SCOPE)


def test_a_cursor_re_signed_with_another_secret_is_rejected(monkeypatch):
    monkeypatch.setenv("AUTH_JWT_SECRET", "some-other-secret-of-enough-length")
    reset_settings()
    foreign = encode_cursor("t1", SCOPE, ["acme#01A", "01A"])
    monkeypatch.setenv("AUTH_JWT_SECRET", "unit-test-secret-of-enough-length")
    reset_settings()
    with pytest.raises(InvalidCursor):
        decode_cursor(foreign, "t1", SCOPE)


@pytest.mark.parametrize("garbage", ["x", "a.b.c", "not base64!.@@", "....", "é.é", "eyJ0IjoxfQ", "%00.%00"])
def test_garbage_is_an_invalid_cursor(garbage):
    with pytest.raises(InvalidCursor) as caught:
        decode_cursor(garbage, "t1", SCOPE)
    assert caught.value.status == 400 and caught.value.code == "invalid_cursor"


def test_another_tenants_cursor_is_rejected():
    cursor = encode_cursor("t2", SCOPE, ["acme#01A", "01A"])
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, "t1", SCOPE)


def test_a_cursor_of_another_query_is_rejected():
    cursor = encode_cursor("t1", SCOPE, ["acme#01A", "01A"])
    other = query_scope("clients", {"status": ["inactive"], "sort": "name"})
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, "t1", other)


def test_a_cursor_of_another_sort_order_is_rejected():
    by_name = query_scope("clients", {"sort": "name"})
    by_name_desc = query_scope("clients", {"sort": "-name"})
    assert by_name != by_name_desc
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor("t1", by_name, ["a", "1"]), "t1", by_name_desc)


def test_query_scope_ignores_cursor_limit_and_parameter_order():
    a = query_scope("clients", {"sort": "name", "q": "acme", "limit": 3, "cursor": "abc"})
    b = query_scope("clients", {"q": "acme", "sort": "name", "limit": 50})
    assert a == b


def test_query_scope_ignores_absent_filters_but_not_present_ones():
    assert query_scope("clients", {"q": None, "sort": "name"}) == query_scope("clients", {"sort": "name"})
    assert query_scope("clients", {"q": "acme"}) != query_scope("clients", {"q": "acm"})
    assert query_scope("clients", {}) != query_scope("contacts", {})

