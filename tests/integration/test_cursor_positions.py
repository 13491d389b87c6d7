"""On DynamoDB Local, which checks start keys as AWS does: a signed start key a query cannot resume from is a 400."""
from __future__ import annotations

import base64
import json

import pytest

from tests.api.test_cursor_positions_api import resigned

pytestmark = pytest.mark.ddb


def _position(cursor: str) -> dict:
    text = cursor.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))["p"]


def test_a_signed_start_key_of_another_partition_or_index_is_400_invalid_cursor(ddb_api):
    acme, beta = (ddb_api.post("/v1/clients", {"name": name}).data["id"] for name in ("Acme", "Beta"))
    for client_id in (acme, beta):
        for name in ("Ann", "Bob"):
            contact = {"full_name": name, "email": f"{name.lower()}.{client_id.lower()}@example.com"}
            assert ddb_api.post(f"/v1/clients/{client_id}/contacts", contact).status_code == 201
    of_acme = f"/v1/clients/{acme}/contacts?limit=1"
    acme_cursor = ddb_api.get(of_acme).data["next_cursor"]
    beta_key = _position(ddb_api.get(f"/v1/clients/{beta}/contacts?limit=1").data["next_cursor"])
    tenant_wide = "/v1/contacts?limit=1"
    tenant_cursor = ddb_api.get(tenant_wide).data["next_cursor"]
    for path, cursor, position in [
        (of_acme, acme_cursor, beta_key),  # Beta's partition, resumed in Acme's query
        (of_acme, acme_cursor, {**beta_key, "sk": {"S": "ZZZ-not-a-contact"}}),
        (tenant_wide, tenant_cursor, beta_key),  # the table's key without the index's
        (of_acme, acme_cursor, {**_position(tenant_cursor)}),  # the index's key in the table's query
    ]:
        response = ddb_api.get(f"{path}&cursor={resigned(cursor, position)}")
        assert response.status_code == 400, (path, position, response.data)
        assert response.data["error"]["code"] == "invalid_cursor"
    assert ddb_api.get(f"{of_acme}&cursor={acme_cursor}").status_code == 200
