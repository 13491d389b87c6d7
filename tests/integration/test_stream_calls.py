"""What a stream batch of client updates costs in DynamoDB calls: shared reads once per batch, each client once."""
from __future__ import annotations

import os
import re
from collections import Counter

import boto3
import pytest

import app as app_module
from bench.bench_scale import stream_record
from chalicelib.domain import client_cases, segment_cases
from chalicelib.domain.scoring import HEALTH, LEAD
from chalicelib.domain.settings import ClientSettings, CustomFieldDef
from chalicelib.domain.values import iso, utcnow
from chalicelib.tables import keys
from chalicelib.tables.stores import Stores
from tests.api.conftest import run_queued_jobs
from tests.ddb_local import own_ddb_endpoint
from tests.dynamo_calls import Calls, recorded

# Thousands of items: this module's own DynamoDB Local keeps the session's fast (see tests/ddb_local.py).
ddb_endpoint = pytest.fixture(scope="module")(own_ddb_endpoint)

CLIENTS = 20
CALLS_PER_RECORD = 5
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")


def _client_item(client_id: str) -> dict:
    key = {"pk": {"S": keys.client_pk("t1", client_id)}, "sk": {"S": keys.CLIENT_SK}}
    dynamodb = boto3.client("dynamodb", endpoint_url=os.environ["DYNAMODB_ENDPOINT"])
    return dynamodb.get_item(TableName=os.environ["TABLE_NAME"], Key=key, ConsistentRead=True)["Item"]


def _tier(n: int) -> str:
    return "vip" if n % 2 == 0 else "preferred"


@pytest.fixture
def api(ddb_api):
    """DynamoDB Local: on moto every transaction copies the table, and 20 clients with their terms take minutes."""
    return ddb_api


@pytest.fixture
def world(api):
    """20 standard-tier clients, each with a call the stream has not scored yet (so each rescore saves new figures
    on its client), a custom field defined, the first five in a static segment and a realtime segment of vip
    clients; then each client's tier changed through update_client: the stream batch of those 20 changes."""
    assert api.post("/v1/settings/custom-fields", {"key": "venue_size", "label": "Venue size",
                                                   "type": "number"}).status_code == 201
    ids = [api.post("/v1/clients", {"name": f"Client {n:02d}", "pricing_tier": "standard",
                                    "custom_fields": {"venue_size": 100 * n}}).data["id"] for n in range(CLIENTS)]
    for client_id in ids:
        assert api.post(f"/v1/clients/{client_id}/communications", {
            "type": "phone", "direction": "inbound", "occurred_at": iso(utcnow())}).status_code == 201
    vip = api.post("/v1/segments", {"name": "VIP", "type": "dynamic", "refresh_frequency": "realtime",
                                    "criteria": {"match": "all", "conditions": [
                                        {"field": "pricing_tier", "operator": "equals", "value": "vip"}]}}).data
    picked = api.post("/v1/segments", {"name": "Picked", "type": "static"}).data
    for client_id in ids[:5]:
        assert api.post(f"/v1/segments/{picked['id']}/members", {"client_id": client_id}).status_code == 201
    run_queued_jobs()
    stores = Stores("t1")
    records = []
    for n, client_id in enumerate(ids):
        old = _client_item(client_id)
        client_cases.update_client(stores, client_id, {"pricing_tier": _tier(n)})
        records.append(stream_record(n, old, _client_item(client_id)))
    return {"ids": ids, "vip": vip["id"], "picked": picked["id"], "batch": {"Records": records}}


def _deliver(batch: dict) -> Calls:
    with recorded() as calls:
        assert app_module.on_table_stream(batch, None) == {"batchItemFailures": []}
    return calls


def _reads(calls: Calls) -> Counter:
    """(pk, sk) of each GetItem; (pk, sort key prefix or None for the whole partition) of each Query."""
    read: Counter = Counter()
    for op, params, _ in calls.made:
        if op == "GetItem":
            read[params["Key"]["pk"]["S"], params["Key"]["sk"]["S"]] += 1
        elif op == "Query":
            condition, values = params["KeyConditionExpression"], params["ExpressionAttributeValues"]
            pk = re.search(r"= (:\w+)", condition)
            prefix = re.search(r"begins_with \(#\w+, (:\w+)\)", condition)
            assert pk is not None
            read[values[pk.group(1)]["S"], values[prefix.group(1)]["S"] if prefix else None] += 1
    return read


def _breakdown(calls: Calls, records: int) -> str:
    return ", ".join(f"{op} {n / records:.2f}" for op, n in sorted(calls.operations.items())) + " per record"


def _members(api, segment_id: str) -> set[str]:
    return {m["client_id"] for m in api.get(f"/v1/segments/{segment_id}/members?limit=100").data["items"]}


def test_a_batch_of_client_updates_costs_at_most_five_calls_per_record(world):
    calls = _deliver(world["batch"])
    records = len(world["batch"]["Records"])
    # The health check's heartbeat: one write per batch at most (and per 15 s), not per record.
    beats = [c for c in calls.made if c[1].get("Item", {}).get("pk", {}).get("S") == keys.HEARTBEAT_PK]
    calls.made = [c for c in calls.made if c not in beats]
    print(f"\n{len(calls.made) / records:.2f} calls per record: {_breakdown(calls, records)}")
    assert len(calls.made) <= CALLS_PER_RECORD * records, _breakdown(calls, records)
    assert len(beats) <= 1


def test_settings_custom_fields_and_the_segment_list_are_read_once_per_batch_and_each_client_once(world):
    read = _reads(_deliver(world["batch"]))
    settings = keys.settings_pk("t1")
    assert read[settings, keys.settings_sk("client")] == 1
    assert read[settings, keys.settings_sk("lead-score-thresholds")] == 1
    assert read[settings, keys.CUSTOM_FIELD_PREFIX] == 1
    assert read[keys.segments_pk("t1"), keys.SEGMENT_PREFIX] == 1
    for client_id in world["ids"]:
        pk = keys.client_pk("t1", client_id)
        assert read[pk, keys.CLIENT_SK] + read[pk, None] == 1, client_id  # the client, or its whole partition


def test_the_batch_moves_clients_into_the_tier_segment_and_scores_them(api, world):
    facts = Stores("t1").facts
    assert _members(api, world["vip"]) == set()
    assert all(facts.score(cid, LEAD) is None for cid in world["ids"])
    _deliver(world["batch"])
    assert _members(api, world["vip"]) == {cid for n, cid in enumerate(world["ids"]) if _tier(n) == "vip"}
    assert _members(api, world["picked"]) == set(world["ids"][:5])
    for client_id in world["ids"]:
        assert facts.score(client_id, LEAD) is not None and facts.score(client_id, HEALTH) is not None
        client = api.get(f"/v1/clients/{client_id}").data
        assert client["health_score"] == facts.score(client_id, HEALTH).data["health_score"]


def test_a_redelivered_batch_changes_nothing(api, world):
    _deliver(world["batch"])
    delivered = [_client_item(cid) for cid in world["ids"]], _members(api, world["vip"])
    again = _deliver(world["batch"])
    assert ([_client_item(cid) for cid in world["ids"]], _members(api, world["vip"])) == delivered
    # Only the timeline entries are written again, each over itself (its key is its stream event); the other
    # writes are conditioned on a change and refused.
    rewritten = [(op, params) for op, params, answer in again.made if op in WRITES and "Error" not in answer]
    assert [op for op, _ in rewritten] == ["BatchWriteItem"], rewritten
    puts = [r["PutRequest"]["Item"]["pk"]["S"] for r in rewritten[0][1]["RequestItems"][os.environ["TABLE_NAME"]]]
    assert all(pk.startswith(keys.activity_pk("t1", "")) for pk in puts)


def test_a_batch_memo_reads_once_and_again_after_its_own_writes(ddb_table):
    batch = Stores("t1", memo=True)
    with recorded() as calls:
        for _ in range(2):
            batch.settings.get("client")
            batch.settings.custom_fields()
            batch.segments.all()
    assert calls.operations == {"GetItem": 1, "Query": 2}
    batch.settings.put("client", ClientSettings(new_client_days=7))
    batch.settings.add_custom_field(CustomFieldDef(key="venue_size", label="Venue size", type="number"))
    segment = segment_cases.create_segment(batch, {"name": "Picked", "type": "static"}, actor=None)
    assert batch.settings.get("client").new_client_days == 7
    assert [d.key for d in batch.settings.custom_fields()] == ["venue_size"]
    assert [s.id for s in batch.segments.all()] == [segment.id]
    batch.segments.set_client_count(segment.id, 4)
    assert [s.client_count for s in batch.segments.all()] == [4]
    batch.settings.delete_custom_field("venue_size")
    assert batch.settings.custom_fields() == []


def test_without_the_memo_every_read_reads_the_table(ddb_table):
    request, other = Stores("t1"), Stores("t1")
    assert request.settings.get("client").new_client_days == 30 and request.segments.all() == []
    other.settings.put("client", ClientSettings(new_client_days=7))
    segment_cases.create_segment(other, {"name": "Picked", "type": "static"}, actor=None)
    assert request.settings.get("client").new_client_days == 7 and len(request.segments.all()) == 1
