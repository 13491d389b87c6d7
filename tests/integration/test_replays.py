"""Replays on DynamoDB Local: stream batches, webhooks, schedules and their jobs, inbound email and idempotent POSTs
delivered two or three times, in order and in parallel, leave the state one delivery leaves."""
from __future__ import annotations

from collections import Counter

import pytest
from chalice.local import LambdaContext

import app as app_module
from chalicelib.config import get_settings, reset_settings
from chalicelib.domain import job_cases
from chalicelib.local.job_queue import sqs_event
from chalicelib.tables.stores import Stores
from tests.audit import assert_consistent
from tests.integration.test_concurrent_writes import SECRET, USER, parallel, webhook

pytestmark = pytest.mark.ddb

REPLAYS = Counter()  # deliveries beyond the first, by kind


@pytest.fixture(autouse=True)
def node_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_WEBHOOK_SECRET", SECRET)


def state(stream=None) -> dict:
    """The derived state after the stream's effects (when a tap is given), checked by the audit."""
    if stream is not None:
        stream.settle()
    return assert_consistent().snapshot


def deliver(batch: list[dict], times: int, at_once: bool) -> None:
    calls = [lambda: app_module.on_table_stream({"Records": batch}, None)] * times
    results = parallel(calls) if at_once else [c() for c in calls]
    assert all(r == {"batchItemFailures": []} for r in results), results
    REPLAYS["stream"] += times - 1


def _world(live) -> dict:
    """Clients with categories, tags and a segment, contacts with a primary, threaded communications, an archive."""
    cats = [live.ok("POST", "/v1/categories", {"name": n}, status=201)["id"] for n in ("Venues", "Caterers")]
    segment = live.ok("POST", "/v1/segments", {"name": "Picked", "type": "static"}, status=201)["id"]
    ids = [live.ok("POST", "/v1/clients", {"name": f"C{n}", "category_ids": [cats[n % 2]], "tags": ["t"]},
                   status=201)["id"] for n in range(4)]
    contact = live.ok("POST", f"/v1/clients/{ids[0]}/contacts", {"full_name": "Pat", "email": "pat@acme.test"},
                      status=201)
    live.ok("POST", f"/v1/clients/{ids[0]}/contacts", {"full_name": "Sam", "email": "sam@acme.test"}, status=201)
    live.ok("POST", f"/v1/clients/{ids[0]}/contacts/{contact['id']}/make-primary")
    for n, direction in enumerate(("inbound", "outbound", "inbound")):
        live.ok("POST", f"/v1/clients/{ids[1]}/communications", {
            "type": "email", "direction": direction, "subject": "Quote", "body": f"message {n}",
            "from_email": "jo@c1.test", "to_email": "office@acme.test",
            "occurred_at": f"2026-11-0{n + 1}T10:00:00Z"}, status=201)
    live.ok("POST", f"/v1/segments/{segment}/members", {"client_id": ids[2]}, status=201)
    live.ok("POST", f"/v1/clients/{ids[3]}/archive")
    live.ok("PATCH", f"/v1/clients/{ids[2]}", {"category_ids": cats})
    return {"ids": ids, "categories": cats, "segment": segment}


def test_every_stream_batch_delivered_again_in_order_or_in_parallel_leaves_the_state_of_one_delivery(live, stream):
    _world(live)
    batch = stream.take()
    assert len(batch) > 20
    deliver(batch, 1, at_once=False)
    once = state(stream)
    for times, at_once in ((2, False), (3, True), (2, True)):
        deliver(batch, times, at_once)
        assert state(stream) == once, (times, at_once)
    deliver(list(reversed(batch)), 2, at_once=True)  # and out of order
    assert state(stream) == once


def _linked(live) -> str:
    client = live.ok("POST", "/v1/clients", {"name": "Acme"}, status=201)
    assert webhook(live, "w-link", "client.linked", {"node_client_id": "n-1", "client_id": client["id"]}).ok
    return client["id"]


def test_a_webhook_delivered_three_times_in_order_or_at_once_applies_once(live, stream):
    _linked(live)
    first = webhook(live, "w-1", "user.upserted", {"node_client_id": "n-1", "user": USER})
    assert first.json() == {"status": "processed"}
    once = state(stream)
    again = [webhook(live, "w-1", "user.upserted", {"node_client_id": "n-1", "user": USER}) for _ in range(2)]
    assert [a.json() for a in again] == [{"status": "duplicate"}] * 2
    changed = {**USER, "job_title": "CTO", "updated_at": "2026-11-02T10:00:00Z"}
    at_once = parallel([lambda: webhook(live, "w-2", "user.upserted", {"node_client_id": "n-1", "user": changed})
                        for _ in range(3)])
    REPLAYS["webhook"] += 4
    assert sorted(a.status_code for a in at_once)[0] == 200
    after = state(stream)
    assert after["contacts"] == once["contacts"]  # the same one contact, changed once
    contacts = live.ok("GET", f"/v1/clients/{_client_id(live)}/contacts")["items"]
    assert [(c["job_title"], c["version"]) for c in contacts] == [("CTO", 2)]


def _client_id(live) -> str:
    return live.ok("GET", "/v1/clients?limit=1")["items"][0]["id"]


def _schedule(handler, at: str) -> dict:
    event = {"version": "0", "id": "e-1", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "000000000000", "time": at, "region": "eu-west-1", "resources": [], "detail": {}}
    return handler(event, LambdaContext("schedule", memory_size=512, max_runtime_ms=300_000))


def _run_jobs_delivering_each_message(times: int, at_once: bool) -> int:
    """Drain the job queue, handing every message to run_jobs `times` times (SQS delivers at least once)."""
    from chalicelib import queue

    folder, delivered = queue.folder(), 0
    context = LambdaContext("run_jobs", memory_size=512, max_runtime_ms=300_000)
    while got := folder.receive(1):
        event = sqs_event(got[0], "jobs", "eu-west-1")
        calls = [lambda e=event: app_module.run_jobs(e, context)] * times
        parallel(calls) if at_once else [c() for c in calls]
        folder.delete(got[0].receipt)
        delivered += 1
        REPLAYS["job message"] += times - 1
    return delivered


@pytest.mark.parametrize("at_once", [False, True], ids=["in order", "at once"])
def test_scheduled_runs_and_their_job_messages_delivered_again_leave_the_state_of_one_run(ddb_api, stream, at_once):
    api = ddb_api
    for n in range(3):
        api.post("/v1/clients", {"name": f"C{n}", "pricing_tier": "vip" if n else "standard"})
    segment = api.post("/v1/segments", {"name": "VIPs", "type": "dynamic", "refresh_frequency": "hourly",
                                        "criteria": {"match": "all", "conditions": [
                                            {"field": "pricing_tier", "operator": "equals", "value": "vip"}]}}).data
    stream.settle()
    before = state(stream)
    runs = [(app_module.refresh_segments, "2026-12-02T10:00:00Z"), (app_module.recalculate_scores,
                                                                    "2026-12-02T00:00:00Z")]
    for handler, at in runs:
        calls = [lambda h=handler, a=at: _schedule(h, a)] * 3
        answers = parallel(calls) if at_once else [c() for c in calls]
        REPLAYS["schedule"] += 2
        assert len({a["fan_out_job"] for a in answers}) == 1  # one fan-out per period, however often it fires
        assert _run_jobs_delivering_each_message(2, at_once) >= 1
    stores = Stores("t1")
    for kind in ("refresh_segments", "rescore"):
        jobs = job_cases.list_jobs(stores, kind, 10, None)[0]
        assert [j.status for j in jobs] == ["done"], (kind, jobs)
    once = state(stream)
    assert once["segments"][segment["id"]] == 2 and once["clients"] == before["clients"]
    for handler, at in runs:  # the whole run once more, the next day, changes nothing derived
        _schedule(handler, at.replace("12-02", "12-03"))
        _run_jobs_delivering_each_message(1, False)
    assert state(stream) == once


@pytest.fixture
def inbox(ddb_api, monkeypatch, tmp_path):
    monkeypatch.setenv("S3_LOCAL_DIR", str(tmp_path / "s3"))
    reset_settings()
    get_settings()
    assert ddb_api.patch("/v1/settings/client", {"inbound_address": "acme@in.nexusrms.test"}).status_code == 200
    folder = tmp_path / "s3" / get_settings().inbound_email_bucket
    folder.mkdir(parents=True)
    return folder


def _mail(inbox, name: str, message_id: str) -> dict:
    (inbox / name).write_text(
        f"From: Jane Doe <jane@acme.test>\r\nTo: acme@in.nexusrms.test\r\nSubject: Quote for May\r\n"
        f"Message-ID: {message_id}\r\nDate: Mon, 02 Mar 2026 10:30:00 +0000\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nCan you send the quote?\r\n")
    return {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": "eu-west-1",
                         "s3": {"bucket": {"name": get_settings().inbound_email_bucket}, "object": {"key": name}}}]}


def test_an_inbound_email_delivered_three_times_in_order_or_at_once_is_logged_once(ddb_api, inbox, stream):
    client = ddb_api.post("/v1/clients", {"name": "Acme"}).data
    ddb_api.post(f"/v1/clients/{client['id']}/contacts", {"full_name": "Jane Doe", "email": "jane@acme.test"})
    event = _mail(inbox, "m1", "<m1@acme.test>")
    outcomes = [app_module.on_inbound_email(event, None)["status"] for _ in range(3)]
    assert outcomes == ["logged", "duplicate", "duplicate"]
    once = state(stream)
    assert once["communications"] == {client["id"]: 1}
    event = _mail(inbox, "m2", "<m2@acme.test>")
    outcomes = [o["status"] for o in parallel([lambda: app_module.on_inbound_email(event, None)] * 3)]
    REPLAYS["inbound email"] += 4
    assert outcomes.count("logged") == 1 and set(outcomes) == {"logged", "duplicate"}, outcomes
    assert state(stream)["communications"] == {client["id"]: 2}


@pytest.mark.parametrize("at_once", [False, True], ids=["in order", "at once"])
def test_idempotent_posts_sent_three_times_create_once(live, stream, at_once):
    client = live.ok("POST", "/v1/clients", {"name": "Acme"}, status=201)
    posts = [("/v1/clients", {"name": "Beta"}),
             (f"/v1/clients/{client['id']}/contacts", {"full_name": "Pat", "email": "pat@acme.test"}),
             (f"/v1/clients/{client['id']}/communications", {"type": "note", "direction": "outbound",
                                                             "subject": "Call", "body": "Called back"})]
    for n, (path, body) in enumerate(posts):
        key = {"Idempotency-Key": f"once-{n}"}
        calls = [lambda p=path, b=body, k=key: live.call("POST", p, b, headers=k)] * 3
        answers = parallel(calls) if at_once else [c() for c in calls]
        REPLAYS["idempotent POST"] += 2
        created = [a for a in answers if a.status_code == 201]
        assert created and len({a.data["id"] for a in created}) == 1, [a.text for a in answers]
        assert all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
        if not at_once:
            assert [a.headers.get("Idempotent-Replayed") for a in answers] == [None, "true", "true"]
    snapshot = state(stream)
    assert len(snapshot["clients"]) == 2
    assert snapshot["contacts"][client["id"]] == [("pat@acme.test", True, False)]
    assert snapshot["communications"] == {client["id"]: 1}



@pytest.fixture(scope="module", autouse=True)
def report_figures():
    """The module's figures, printed at its end (seen with -s, or in a soak's log) for SECURITY.md."""
    yield
    print(f"\n{__name__}: {dict(REPLAYS)}")
