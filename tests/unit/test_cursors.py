"""List cursors are opaque and tamper-proof: only this tenant's cursor of this same query is accepted."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from chalicelib.config import ConfigurationError, reset_settings
from chalicelib.handlers.errors import InvalidCursor, status_of
from chalicelib.handlers.pagination import START_KEY, decode_cursor, encode_cursor, page_of_list, query_scope

SCOPE = query_scope("clients", {"status": ["active"], "sort": "name"})
CURSOR_SECRET = "unit-test-cursor-secret-of-enough-length"


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("CURSOR_SECRET", CURSOR_SECRET)
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
    assert decode_cursor(cursor, "t1", SCOPE, (str, str)) == ["acme#01A", "01A"]


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
        decode_cursor(forged, "t1", SCOPE, (str, str))


def test_edited_signature_is_rejected():
    cursor = encode_cursor("t1", SCOPE, ["acme#01A", "01A"])
    payload, signature = cursor.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(InvalidCursor):
        decode_cursor(f"{payload}.{flipped}", "t1", SCOPE, (str, str))


def test_a_cursor_re_signed_with_another_secret_is_rejected(monkeypatch):
    monkeypatch.setenv("CURSOR_SECRET", "some-other-secret-of-enough-length")
    reset_settings()
    foreign = encode_cursor("t1", SCOPE, ["acme#01A", "01A"])
    monkeypatch.setenv("CURSOR_SECRET", CURSOR_SECRET)
    reset_settings()
    with pytest.raises(InvalidCursor):
        decode_cursor(foreign, "t1", SCOPE, (str, str))


@pytest.mark.parametrize("garbage", ["x", "a.b.c", "not base64!.@@", "....", "é.é", "eyJ0IjoxfQ", "%00.%00"])
def test_garbage_is_an_invalid_cursor(garbage):
    with pytest.raises(InvalidCursor) as caught:
        decode_cursor(garbage, "t1", SCOPE)
    assert status_of(caught.value) == 400 and caught.value.code == "invalid_cursor"


def test_another_tenants_cursor_is_rejected():
    cursor = encode_cursor("t2", SCOPE, ["acme#01A", "01A"])
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, "t1", SCOPE, (str, str))


def test_a_cursor_of_another_query_is_rejected():
    cursor = encode_cursor("t1", SCOPE, ["acme#01A", "01A"])
    other = query_scope("clients", {"status": ["inactive"], "sort": "name"})
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, "t1", other, (str, str))


def test_a_cursor_of_another_sort_order_is_rejected():
    by_name = query_scope("clients", {"sort": "name"})
    by_name_desc = query_scope("clients", {"sort": "-name"})
    assert by_name != by_name_desc
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor("t1", by_name, ["a", "1"]), "t1", by_name_desc, (str, str))


def test_query_scope_ignores_cursor_limit_and_parameter_order():
    a = query_scope("clients", {"sort": "name", "q": "acme", "limit": 3, "cursor": "abc"})
    b = query_scope("clients", {"q": "acme", "sort": "name", "limit": 50})
    assert a == b


def test_query_scope_ignores_absent_filters_but_not_present_ones():
    assert query_scope("clients", {"q": None, "sort": "name"}) == query_scope("clients", {"sort": "name"})
    assert query_scope("clients", {"q": "acme"}) != query_scope("clients", {"q": "acm"})
    assert query_scope("clients", {}) != query_scope("contacts", {})



# --- the secret, and positions a list cannot use -------------------------------------------------------

KEY = {"pk": {"S": "T#t1#CLIENT#01A"}, "sk": {"S": "C#01B"}}


def signed_with(key: bytes, payload: object) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return f"{_b64(raw)}.{_b64(hmac.new(key, raw, hashlib.sha256).digest())}"


def test_a_cursor_signed_with_the_old_constant_key_is_refused():
    # Deployed, the key used to be "cursor:" + AUTH_JWT_SECRET with that secret unset: anyone could sign.
    forged = signed_with(b"cursor:", {"t": "t1", "s": SCOPE, "p": KEY})
    with pytest.raises(InvalidCursor):
        decode_cursor(forged, "t1", SCOPE)
    assert decode_cursor(signed_with(CURSOR_SECRET.encode(), {"t": "t1", "s": SCOPE, "p": KEY}), "t1", SCOPE) == KEY


def test_without_any_cursor_secret_the_first_use_fails_loudly(monkeypatch):
    monkeypatch.delenv("CURSOR_SECRET")
    monkeypatch.delenv("AUTH_JWT_SECRET")
    reset_settings()
    with pytest.raises(ConfigurationError):
        encode_cursor("t1", SCOPE, KEY)


def test_a_start_key_position_is_given_back_as_it_was():
    gsi = {**KEY, "gsi2pk": {"S": "T#t1#CONTACTS"}, "gsi2sk": {"S": "ann#01C"}}
    assert decode_cursor(encode_cursor("t1", SCOPE, gsi), "t1", SCOPE, START_KEY) == gsi


@pytest.mark.parametrize("position", [
    None, [], "T#t1", 7, ["a", "b"], {"pk": {"S": "a"}}, {"pk": {"S": "a"}, "sk": 1},
    {"pk": {"S": 1}, "sk": {"S": "b"}}, {"pk": {"N": "1"}, "sk": {"S": "b"}},
    {"pk": {"S": "a", "N": "1"}, "sk": {"S": "b"}}, {"pk": {"S": ""}, "sk": {"S": "b"}},
    {"pk": {"S": "a"}, "sk": {"S": "b" * 3000}}, {"pk": {"S": "a"}, "sk": {"S": "\ud800"}},
    {"pk": {"S": "a"}, "sk": {"S": "b"}, "Bad Name": {"S": "c"}},
    {"pk": {"S": "a"}, "sk": {"S": "b"}, "x1": {"S": "c"}, "x2": {"S": "c"}, "x3": {"S": "c"}},
])
def test_a_signed_start_key_of_the_wrong_shape_is_an_invalid_cursor(position):
    with pytest.raises(InvalidCursor) as caught:
        decode_cursor(encode_cursor("t1", SCOPE, position), "t1", SCOPE)
    assert caught.value.code == "invalid_cursor"


@pytest.mark.parametrize("position", [
    KEY, ["a"], ["a", 1], [1, "a"], ["a", "b", "c"], [True, "a"], ["a", None], ["a", 1.5], [["a"], "b"],
    ["a", "b" * 2000],
])
def test_a_signed_list_position_of_the_wrong_shape_is_an_invalid_cursor(position):
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor("t1", SCOPE, position), "t1", SCOPE, (str, str))


@pytest.mark.parametrize("payload", [["t1", SCOPE], "t1", 42, None, {"t": "t1"}, {"t": "t1", "s": SCOPE}])
def test_a_signed_payload_that_is_not_a_cursor_is_an_invalid_cursor(payload):
    with pytest.raises(InvalidCursor):
        decode_cursor(signed_with(CURSOR_SECRET.encode(), payload), "t1", SCOPE)


def test_a_signed_payload_nested_too_deeply_to_read_is_an_invalid_cursor():
    raw = b"[" * 100_000 + b"]" * 100_000
    deep = f"{_b64(raw)}.{_b64(hmac.new(CURSOR_SECRET.encode(), raw, hashlib.sha256).digest())}"
    with pytest.raises(InvalidCursor):
        decode_cursor(deep, "t1", SCOPE)


def test_an_oversized_cursor_is_invalid_without_being_read():
    with pytest.raises(InvalidCursor):
        decode_cursor("A" * 5000 + "." + "B" * 43, "t1", SCOPE)


CATEGORIES = [(1, "alpha", "01A"), (1, "beta", "01B"), (2, "gamma", "01C")]


def test_an_in_memory_list_resumes_after_its_own_cursor():
    page, cursor = page_of_list(CATEGORIES, list, tenant_id="t1", scope=SCOPE, limit=2, cursor=None)
    assert page == CATEGORIES[:2]
    assert page_of_list(CATEGORIES, list, tenant_id="t1", scope=SCOPE, limit=2, cursor=cursor) == ([CATEGORIES[2]],
                                                                                                     None)


@pytest.mark.parametrize("position", [["a", "b", "c"], [1, "alpha"], [1, "alpha", "01A", "x"], KEY, [1, 2, 3]])
def test_an_in_memory_list_refuses_a_position_it_cannot_compare(position):
    # Signed and for this very query, but not of this list's shape: a 400, never a TypeError (a 500).
    with pytest.raises(InvalidCursor):
        page_of_list(CATEGORIES, list, tenant_id="t1", scope=SCOPE, limit=2,
                     cursor=encode_cursor("t1", SCOPE, position))
