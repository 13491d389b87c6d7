"""The tenant's duplicates list follows the table's stream: a second holder lists a key, an archive unlists it."""
from __future__ import annotations


def _pairs(api) -> list[set[str]]:
    return [{c["id"] for c in p["clients"]} for p in api.get("/v1/duplicates").data["items"]]


def test_the_list_follows_creates_edits_and_archives_even_when_records_come_twice(ddb_api, stream):
    import app as app_module

    first = ddb_api.post("/v1/clients", {"name": "Hall Nine Ltd", "email": "a@hallnine.example"}).data["id"]
    second = ddb_api.post("/v1/clients?allow_duplicate=true", {"name": "Hall Nine", "email": "b@hallnine.example"}
                          ).data["id"]
    other = ddb_api.post("/v1/clients", {"name": "Elsewhere"}).data["id"]
    batch = stream.take()
    assert _pairs(ddb_api) == []  # listed by the stream, not by the request
    for replay in (batch, batch, list(reversed(batch))):
        assert app_module.on_table_stream({"Records": replay}, None) == {"batchItemFailures": []}
    (listed,) = ddb_api.get("/v1/duplicates").data["items"]  # one pair, every reason it matches by
    assert {c["id"] for c in listed["clients"]} == {first, second}
    assert listed["reasons"] == ["same_email_domain", "same_name_and_country"]

    ddb_api.patch(f"/v1/clients/{other}", {"email": "c@hallnine.example"})
    stream.settle()
    assert sorted(map(sorted, _pairs(ddb_api))) == sorted(map(sorted, [{first, second}, {first, other},
                                                                      {second, other}]))
    ddb_api.post(f"/v1/clients/{second}/archive")
    stream.settle()
    assert _pairs(ddb_api) == [{first, other}]
