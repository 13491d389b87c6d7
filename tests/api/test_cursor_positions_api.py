"""A cursor that is validly signed but holds a position its list cannot use is a 400 `invalid_cursor`, never a 500."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from chalicelib.config import get_settings

LIST_POSITIONS = [[], ["a"], ["a", 1], [1, 2, 3], ["", "01A"], ["a", "b" * 2000], [True, "a"]]
START_KEYS = [{"pk": {"S": "x"}}, {"pk": {"S": "x"}, "sk": {"S": ""}}, {"pk": {"S": 1}, "sk": {"S": "y"}},
              {"pk": {"S": "x"}, "sk": {"S": "y"}, "Bad Name": {"S": "z"}}]
OTHER = [{"p": 1}, "text", 7, None]
# Positions a list cannot use, per kind of list; a well-formed start key of another partition is refused by
# DynamoDB itself (tests/integration/test_cursor_positions.py: moto does not check start keys).
WRONG = {"list": LIST_POSITIONS + START_KEYS + OTHER + [{"pk": {"S": "x"}, "sk": {"S": "y"}}],
         "start key": LIST_POSITIONS + START_KEYS + OTHER + [["a", "b"]]}


def resigned(cursor: str, position) -> str:
    """The same cursor (tenant, query) with another position, signed with the service's own key."""
    text = cursor.split(".")[0]
    data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    raw = json.dumps({**data, "p": position}, separators=(",", ":")).encode()
    signature = hmac.new(get_settings().cursor_secret, raw, hashlib.sha256).digest()
    return ".".join(base64.urlsafe_b64encode(part).rstrip(b"=").decode() for part in (raw, signature))


def first_cursor(api, path: str) -> str:
    cursor = api.get(path).data["next_cursor"]
    assert cursor, path
    return cursor


@pytest.fixture
def lists(api):
    """Three paged lists with a second page: clients (sort value + id), contacts (a start key), categories
    (in memory, ordered by sort_order, name and id)."""
    client = api.post("/v1/clients", {"name": "Acme"}).data
    api.post("/v1/clients", {"name": "Beta"})
    for name in ("Ann", "Bob"):
        contact = {"full_name": name, "email": f"{name.lower()}@example.com"}
        assert api.post(f"/v1/clients/{client['id']}/contacts", contact).status_code == 201
    for name in ("Gold", "Silver"):
        assert api.post("/v1/categories", {"name": name}).status_code == 201
    return {"/v1/clients?limit=1": "list", f"/v1/clients/{client['id']}/contacts?limit=1": "start key",
            "/v1/contacts?limit=1": "start key", "/v1/categories?limit=1": "list"}


def test_a_signed_cursor_with_a_position_its_list_cannot_use_is_400_invalid_cursor(api, lists):
    for path, kind in lists.items():
        cursor = first_cursor(api, path)
        for position in WRONG[kind]:
            response = api.get(f"{path}&cursor={resigned(cursor, position)}")
            assert response.status_code == 400, (path, position, response.data)
            assert response.data["error"]["code"] == "invalid_cursor"
        again = api.get(f"{path}&cursor={cursor}")  # the untouched cursor still reads the next page
        assert again.status_code == 200 and again.data["items"], path
