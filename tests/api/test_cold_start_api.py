"""Requests over many item types share one DynamoDB connection: one botocore client per process, made lazily."""
from __future__ import annotations

import botocore.client
import pytest

from chalicelib.tables import reset_connections


@pytest.fixture
def dynamodb_clients_made(monkeypatch) -> list[str]:
    made: list[str] = []
    create = botocore.client.ClientCreator.create_client

    def counting(self, service_name, *args, **kwargs):
        if service_name == "dynamodb":
            made.append(service_name)
        return create(self, service_name, *args, **kwargs)

    monkeypatch.setattr(botocore.client.ClientCreator, "create_client", counting)
    return made


def test_requests_over_many_item_types_make_one_dynamodb_client(api, dynamodb_clients_made):
    reset_connections()  # as a fresh process: no connection yet
    assert dynamodb_clients_made == []
    client = api.post("/v1/clients", {"name": "Acme Events", "tags": ["vip"]}).data
    assert api.post(f"/v1/clients/{client['id']}/contacts", {"full_name": "Ana Lima",
                                                              "email": "ana@acme.test"}).status_code == 201
    assert api.post("/v1/categories", {"name": "Venues"}).status_code == 201
    assert api.patch("/v1/settings/client", {"new_client_days": 10}).status_code == 200
    for path in (f"/v1/clients/{client['id']}", "/v1/clients", f"/v1/clients/{client['id']}/contacts",
                 "/v1/categories", "/v1/clients/chips", "/v1/settings/custom-fields"):
        assert api.get(path).status_code == 200, path
    assert dynamodb_clients_made == ["dynamodb"]
