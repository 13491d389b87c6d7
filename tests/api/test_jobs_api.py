"""The job runner through app.run_jobs on moto's SQS and DynamoDB: steps, redeliveries, retries, dead letters and
the schedules' fan-out to one job per tenant."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest

import app as app_module
from chalicelib import queue
from chalicelib.config import get_settings
from chalicelib.domain import job_cases, schedule_cases
from chalicelib.domain.jobs import MAX_ATTEMPTS, StepResult
from chalicelib.handlers import events
from chalicelib.tables.stores import Stores
from chalicelib.tables.tenants import register_tenant
from tests.api.conftest import run_queued_jobs

STEPS: list[tuple[str, int]] = []  # (job id, offset) of every step run
FAIL = {"at": None}


def _chunks(stores, job, deadline):
    """A dummy kind: counts to params["upto"] in chunks of 10, saving its offset after each chunk."""
    at = job.state.get("offset", 0)
    STEPS.append((job.id, at))
    if FAIL["at"] == at:
        raise RuntimeError(f"chunk at {at} broke")
    nxt = min(job.params["upto"], at + 10)
    return StepResult(state={"offset": nxt}, processed=nxt - at, result={"chunks": 1}, done=nxt >= job.params["upto"])


job_cases.register_kind("chunks", _chunks)


@pytest.fixture(autouse=True)
def _reset():
    STEPS.clear()
    FAIL["at"] = None


def _sqs():
    return boto3.client("sqs", region_name="eu-west-1")


def _depth(url: str) -> int:
    attrs = _sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                     "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


def _dlq_url() -> str:
    return _sqs().get_queue_url(QueueName="jobs-dlq")["QueueUrl"]


def test_a_multi_step_job_finishes_with_progress_saved_per_step(aws):
    stores = Stores("t1")
    job = job_cases.start_job(stores, "chunks", {"upto": 35}, total=35)
    assert run_queued_jobs() == 4
    done = job_cases.get_job(stores, "chunks", job.id)
    assert done.status == "done" and done.step == 4 and done.processed == 35 == done.total
    assert done.result == {"chunks": 4} and done.state == {"offset": 35}
    assert [offset for _, offset in STEPS] == [0, 10, 20, 30]
    assert _depth(get_settings().jobs_queue_url) == 0


def test_a_step_delivered_twice_advances_once(aws):
    stores = Stores("t1")
    job = job_cases.start_job(stores, "chunks", {"upto": 20})
    queue.send({"tenant_id": "t1", "kind": "chunks", "job_id": job.id, "step": 0})  # SQS delivers it twice
    run_queued_jobs()
    done = job_cases.get_job(stores, "chunks", job.id)
    assert done.status == "done" and done.processed == 20 and done.result == {"chunks": 2}
    assert [offset for _, offset in STEPS] == [0, 10]


def test_a_crash_after_the_save_before_the_enqueue_is_recovered_by_the_redelivery(aws, monkeypatch):
    stores = Stores("t1")
    job = job_cases.start_job(stores, "chunks", {"upto": 20})
    real_send, calls = queue.send, []

    def send_once_broken(message):
        calls.append(message)
        if len(calls) == 1:
            raise ConnectionError("the function died before the next step was enqueued")
        real_send(message)

    monkeypatch.setattr(queue, "send", send_once_broken)
    run_queued_jobs()
    done = job_cases.get_job(stores, "chunks", job.id)
    assert done.status == "done" and done.processed == 20
    assert [offset for _, offset in STEPS] == [0, 10]  # step 0 ran once; its redelivery only sent step 1


def test_a_failing_step_is_retried_and_after_five_receives_the_job_is_failed_and_dead_lettered(aws):
    stores = Stores("t1")
    FAIL["at"] = 10
    job = job_cases.start_job(stores, "chunks", {"upto": 30})
    assert run_queued_jobs() == 1 + MAX_ATTEMPTS
    failed = job_cases.get_job(stores, "chunks", job.id)
    assert failed.status == "failed" and failed.error == "RuntimeError: chunk at 10 broke"
    assert failed.attempts == MAX_ATTEMPTS and failed.processed == 10 and failed.step == 1
    assert [offset for _, offset in STEPS] == [0] + [10] * MAX_ATTEMPTS
    [dead] = _sqs().receive_message(QueueUrl=_dlq_url(), AttributeNames=["All"])["Messages"]
    assert json.loads(dead["Body"]) == {"tenant_id": "t1", "kind": "chunks", "job_id": job.id, "step": 1}


def test_a_replayed_dead_letter_finishes_its_failed_job(aws):
    stores = Stores("t1")
    FAIL["at"] = 0
    job = job_cases.start_job(stores, "chunks", {"upto": 20})
    run_queued_jobs()
    [dead] = _sqs().receive_message(QueueUrl=_dlq_url())["Messages"]
    FAIL["at"] = None  # the fix is deployed; the operator redrives the dead-letter queue
    queue.send(json.loads(dead["Body"]))
    run_queued_jobs()
    assert job_cases.get_job(stores, "chunks", job.id).status == "done"


def test_retrying_a_failed_job_enqueues_the_step_it_failed(aws):
    stores = Stores("t1")
    FAIL["at"] = 10
    job = job_cases.start_job(stores, "chunks", {"upto": 20})
    run_queued_jobs()
    FAIL["at"] = None
    job_cases.retry_job(stores, "chunks", job.id)
    assert run_queued_jobs() == 1
    done = job_cases.get_job(stores, "chunks", job.id)
    assert done.status == "done" and done.processed == 20 and done.error is None


def test_the_worker_backs_off_a_failed_step_instead_of_waiting_the_visibility_timeout(aws, monkeypatch):
    delays = []
    monkeypatch.setattr(queue, "retry_later", lambda receipt, seconds: delays.append(seconds))
    FAIL["at"] = 0
    job_cases.start_job(Stores("t1"), "chunks", {"upto": 10})
    run_queued_jobs()
    assert delays[:-1] == sorted(delays[:-1]) and 0 < delays[0] < delays[-2] <= 900
    assert delays[-1] == 0  # after the last receive straight on to the dead-letter queue


def test_a_malformed_message_goes_to_the_dead_letter_queue(aws):
    _sqs().send_message(QueueUrl=get_settings().jobs_queue_url, MessageBody="not json")
    assert run_queued_jobs() == MAX_ATTEMPTS
    assert _depth(_dlq_url()) == 1


def _tenants(*ids):
    for tenant_id in ids:
        register_tenant(tenant_id)


def _scheduled(name: str, at: str) -> dict:
    return {"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "0", "time": at, "region": "eu-west-1", "resources": [f"arn:...:rule/{name}"], "detail": {}}


def test_the_hourly_schedule_enqueues_one_job_per_tenant_once_and_the_worker_finishes_them(aws):
    _tenants("a1", "b2", "c3")
    event = _scheduled("refresh_segments", "2030-05-01T10:00:03Z")
    first = app_module.refresh_segments(event, None)
    assert first["status"] == "done" and first["tenant_jobs"] == 3
    app_module.refresh_segments(event, None)  # EventBridge delivered it twice
    app_module.refresh_segments(_scheduled("refresh_segments", "2030-05-01T10:59:00Z"), None)  # same hour
    assert _depth(get_settings().jobs_queue_url) == 3
    assert run_queued_jobs() == 3
    for tenant_id in ("a1", "b2", "c3"):
        [job] = job_cases.list_jobs(Stores(tenant_id), "refresh_segments", 10, None)[0]
        assert job.status == "done"
    app_module.refresh_segments(_scheduled("refresh_segments", "2030-05-01T11:00:02Z"), None)
    assert run_queued_jobs() == 3  # the next hour: a new job per tenant


def test_the_daily_schedule_rescores_every_tenant_through_jobs(api):
    api.post("/v1/clients", {"name": "Acme"})
    api.as_("t2").post("/v1/clients", {"name": "Bolt"})
    result = app_module.recalculate_scores(_scheduled("recalculate_scores", "2030-05-01T00:00:09Z"), None)
    assert result["tenant_jobs"] == 2
    assert run_queued_jobs() == 2
    for tenant_id in ("t1", "t2"):
        [job] = job_cases.list_jobs(Stores(tenant_id), "rescore", 10, None)[0]
        assert job.status == "done" and job.result["rescored"] == 1


def test_a_fan_out_cut_off_by_the_schedule_time_goes_on_in_the_worker(aws, monkeypatch):
    monkeypatch.setattr(schedule_cases, "TENANTS_PER_STEP", 2)
    _tenants("a1", "b2", "c3", "d4", "e5")
    result = events.refresh_segments(lambda: 0, now=datetime(2030, 5, 1, 10, tzinfo=UTC))
    assert result["status"] == "running" and result["tenant_jobs"] == 2  # one step, then out of time
    run_queued_jobs()
    fan_out = job_cases.get_job(Stores(events.SYSTEM_TENANT), "refresh_segments_fanout", result["fan_out_job"])
    assert fan_out.status == "done" and fan_out.result["tenant_jobs"] == 5
    for tenant_id in ("a1", "b2", "c3", "d4", "e5"):
        assert job_cases.list_jobs(Stores(tenant_id), "refresh_segments", 10, None)[0][0].status == "done"
