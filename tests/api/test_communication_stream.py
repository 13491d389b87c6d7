"""The stream handler keeps response times exact when batches are replayed, reordered, or items deleted."""
from __future__ import annotations

import boto3

import app as app_module
from chalicelib.tables import keys


def _records(client_id, comm_ids, table="client-management-test"):
    dynamodb = boto3.client("dynamodb")
    records = []
    for n, comm_id in enumerate(comm_ids):
        item = dynamodb.get_item(TableName=table, Key={"pk": {"S": keys.client_pk("t1", client_id)},
                                                       "sk": {"S": keys.comm_sk(comm_id)}})["Item"]
        records.append({"eventID": str(n), "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
                        "awsRegion": "eu-west-1", "eventSourceARN": "arn:aws:dynamodb:eu-west-1:0:table/t/stream/x",
                        "dynamodb": {"Keys": {"pk": item["pk"], "sk": item["sk"]}, "NewImage": item, "OldImage": item,
                                     "SequenceNumber": str(100 + n), "SizeBytes": 1,
                                     "StreamViewType": "NEW_AND_OLD_IMAGES", "ApproximateCreationDateTime": 1}})
    return {"Records": records}


def test_replayed_and_reordered_batches_leave_response_times_unchanged(api):
    client = api.post("/v1/clients", {"name": "Acme"}).data
    base = f"/v1/clients/{client['id']}/communications"
    asked = api.post(base, {"type": "phone", "direction": "inbound", "occurred_at": "2026-03-02T09:00:00Z"}).data
    answered = api.post(base, {"type": "phone", "direction": "outbound",
                               "occurred_at": "2026-03-02T10:30:30Z"}).data
    batch = _records(client["id"], [asked["id"], answered["id"]])
    for replay in (batch, batch, {"Records": list(reversed(batch["Records"]))}):
        assert app_module.on_table_stream(replay, None) == {"batchItemFailures": []}
        assert api.get(f"{base}/{asked['id']}").data["response_time_minutes"] == 90
        assert api.get(f"/v1/clients/{client['id']}").data["avg_response_time_minutes"] == 90


def test_deleting_the_answer_clears_the_response_time(api):
    client = api.post("/v1/clients", {"name": "Acme"}).data
    base = f"/v1/clients/{client['id']}/communications"
    asked = api.post(base, {"type": "phone", "direction": "inbound", "occurred_at": "2026-03-02T09:00:00Z"}).data
    answered = api.post(base, {"type": "phone", "direction": "outbound",
                               "occurred_at": "2026-03-02T09:20:00Z"}).data
    app_module.on_table_stream(_records(client["id"], [asked["id"], answered["id"]]), None)
    assert api.get(f"{base}/{asked['id']}").data["response_time_minutes"] == 20
    version = api.get(f"/v1/clients/{client['id']}").data["version"]
    assert api.call("DELETE", f"{base}/{answered['id']}").status_code == 204
    app_module.on_table_stream(_records(client["id"], [answered["id"]]), None)
    assert api.get(f"{base}/{asked['id']}").data["response_time_minutes"] is None
    after = api.get(f"/v1/clients/{client['id']}").data
    assert after["avg_response_time_minutes"] is None
    assert after["version"] == version  # a derived figure never makes a user's If-Match stale


def test_a_thread_collects_its_messages_with_counts_preview_and_icon(api):
    client = api.post("/v1/clients", {"name": "Acme"}).data
    threads = f"/v1/clients/{client['id']}/threads"
    thread = api.post(threads, {"subject": "May festival rig", "type": "email"}).data
    assert thread["icon"] == "mdi-email" and thread["messages_count"] == 0 and thread["status"] == "active"
    base = f"/v1/clients/{client['id']}/communications"
    first = api.post(base, {"type": "note", "body": "Asked for the rig plan", "thread_id": thread["id"],
                            "occurred_at": "2026-03-02T09:00:00Z"}).data
    second = api.post(base, {"type": "note", "body": "Rig plan   received", "thread_id": thread["id"],
                             "occurred_at": "2026-03-02T11:00:00Z"}).data
    bad = api.post(base, {"type": "note", "body": "x", "thread_id": "nope"})
    assert bad.status_code == 422 and bad.data["error"]["details"][0]["field"] == "thread_id"
    batch = _records(client["id"], [first["id"], second["id"]])
    app_module.on_table_stream(batch, None)
    app_module.on_table_stream(batch, None)
    got = api.get(f"{threads}/{thread['id']}").data
    assert got["messages_count"] == 2 and got["preview"] == "Rig plan received"
    assert got["last_activity_at"] == "2026-03-02T11:00:00.000Z"
    assert [m["id"] for m in got["messages"]] == [first["id"], second["id"]]
    archived = api.patch(f"{threads}/{thread['id']}", {"status": "archived"}).data
    assert archived["status"] == "archived"
    assert [t["id"] for t in api.get(threads).data["items"]] == [thread["id"]]
