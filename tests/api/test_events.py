"""The Lambda event entry points of app.py, invoked as Lambda would, on moto's DynamoDB."""
from __future__ import annotations

from datetime import timedelta

import boto3

import app as app_module
from chalicelib.domain import client_cases, job_cases
from chalicelib.domain.values import utcnow
from chalicelib.handlers import events
from chalicelib.tables import keys
from chalicelib.tables.clients import ClientRepository
from chalicelib.tables.items import FacetEntry
from chalicelib.tables.stores import Stores
from tests.api.conftest import run_queued_jobs


def _record(seq: str, new_image: dict | None, event_name: str = "INSERT") -> dict:
    return {"eventID": seq, "eventName": event_name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1", "eventSourceARN": "arn:aws:dynamodb:eu-west-1:0:table/t/stream/x",
            "dynamodb": {"Keys": {"pk": {"S": "p"}, "sk": {"S": "s"}}, "NewImage": new_image,
                         "SequenceNumber": seq, "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES",
                         "ApproximateCreationDateTime": 1700000000}}


def test_stream_batch_with_unknown_and_client_items_reports_no_failures(api):
    created = api.post("/v1/clients", {"name": "Streamed"}).data
    table = boto3.client("dynamodb").get_item(
        TableName="client-management-test", Key={"pk": {"S": keys.client_pk("t1", created["id"])},
                                                 "sk": {"S": keys.CLIENT_SK}})
    batch = {"Records": [_record("1", table["Item"]), _record("2", {"pk": {"S": "x"}, "kind": {"S": "martian"}}),
                         _record("3", {"pk": {"S": "x"}})]}
    assert app_module.on_table_stream(batch, None) == {"batchItemFailures": []}


def test_daily_schedule_prunes_new_entries_past_the_window_and_chip_follows(api, monkeypatch):
    created = api.post("/v1/clients", {"name": "Old Timer"}).data
    assert api.get("/v1/clients/chips").data["new"] == 1
    later = utcnow() + timedelta(days=31)
    assert events.recalculate_scores(now=later)["tenant_jobs"] == 1
    assert run_queued_jobs() == 1  # the tenant's rescore job, one step
    [job] = job_cases.list_jobs(Stores("t1"), "rescore", 10, None)[0]
    assert job.status == "done" and job.result == {"pruned_new_entries": 1, "rescored": 1}
    remaining = list(FacetEntry.query(keys.facet_pk("t1", "new", "1")))
    assert [e.client_id for e in remaining] == []
    monkeypatch.setattr(client_cases, "utcnow", lambda: later)  # the chip counts creation days up to now
    assert api.get("/v1/clients/chips").data["new"] == 0
    assert api.get("/v1/clients?chip=new").data["items"] == []
    assert ClientRepository("t1").get(created["id"]).name == "Old Timer"


def test_daily_schedule_keeps_clients_still_inside_the_window(api):
    api.post("/v1/clients", {"name": "Fresh"})
    events.recalculate_scores(now=utcnow() + timedelta(days=29))
    run_queued_jobs()
    assert job_cases.list_jobs(Stores("t1"), "rescore", 10, None)[0][0].result["pruned_new_entries"] == 0
    assert api.get("/v1/clients/chips").data["new"] == 1
