"""The local jobs queue: a folder that behaves like SQS, the worker thread that feeds app.run_jobs, and the
`jobs` operator commands."""
from __future__ import annotations

import json
import threading
import time

import pytest
from chalice import Chalice

from chalicelib.local.job_queue import JobQueueWorker, deliver, sqs_sources
from chalicelib.queue import FolderQueue


def test_messages_are_received_oldest_first_and_hidden_while_in_flight(tmp_path):
    q = FolderQueue(tmp_path)
    for n in range(3):
        q.send({"n": n})
    first = q.receive(2)
    assert [m.body for m in first] == [{"n": 0}, {"n": 1}] and all(m.receive_count == 1 for m in first)
    assert [m.body for m in q.receive(5)] == [{"n": 2}]
    assert q.receive(5) == []
    assert q.counts() == {"pending": 0, "inflight": 3, "dead": 0}


def test_a_deleted_message_is_gone_and_a_stale_receipt_deletes_nothing(tmp_path):
    q = FolderQueue(tmp_path)
    q.send({"n": 1})
    [m] = q.receive(1, visibility_timeout=0)
    [again] = q.receive(1)  # its visibility ended: received again, under a new receipt
    assert again.receive_count == 2 and not q.delete(m.receipt)
    assert q.delete(again.receipt) and q.counts() == {"pending": 0, "inflight": 0, "dead": 0}


def test_a_message_not_deleted_comes_back_after_its_visibility_timeout(tmp_path):
    q = FolderQueue(tmp_path)
    q.send({"n": 1})
    [m] = q.receive(1, visibility_timeout=1)
    assert q.receive(1) == []
    time.sleep(1.1)
    [back] = q.receive(1)
    assert back.id == m.id and back.receive_count == 2


def test_changing_the_visibility_brings_a_message_back_sooner_or_later(tmp_path):
    q = FolderQueue(tmp_path)
    q.send({"n": 1})
    [m] = q.receive(1)
    later = q.change_visibility(m.receipt, 3600)
    assert later and q.receive(1) == [] and q.change_visibility(m.receipt, 0) is None  # the old receipt is stale
    q.change_visibility(later, 0)
    assert [r.id for r in q.receive(1)] == [m.id]


def test_after_five_receives_a_message_is_dead_lettered_with_its_last_error_and_can_be_redriven(tmp_path):
    q = FolderQueue(tmp_path)
    q.send({"job": "x"})
    for count in range(1, 6):
        [m] = q.receive(1, visibility_timeout=0)
        assert m.receive_count == count
        q.note_error(m.id, f"failure {count}")
    assert q.receive(1) == []
    [dead] = q.dead_letters()
    assert dead.body == {"job": "x"} and dead.receive_count == 5 and dead.last_error == "failure 5"
    assert q.redrive(dead.id) and q.dead_letters() == []
    [m] = q.receive(1)
    assert m.body == {"job": "x"} and m.receive_count == 1


def test_messages_survive_a_restart(tmp_path):
    FolderQueue(tmp_path).send({"n": 1})
    assert [m.body for m in FolderQueue(tmp_path).receive(1)] == [{"n": 1}]


def test_parallel_receivers_never_get_the_same_message(tmp_path):
    q = FolderQueue(tmp_path)
    for n in range(60):
        q.send({"n": n})
    got, lock = [], threading.Lock()

    def receiver():
        while batch := FolderQueue(tmp_path).receive(1):
            with lock:
                got.extend(m.body["n"] for m in batch)

    threads = [threading.Thread(target=receiver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(60))


def _stand_in_app(seen: list, fail: dict) -> Chalice:
    app = Chalice(app_name="stand-in")

    @app.on_sqs_message(queue="jobs-queue", batch_size=1)
    def run_jobs(event):
        for record in event:
            attrs = record.to_dict()["attributes"]
            seen.append((json.loads(record.body), int(attrs["ApproximateReceiveCount"]), record.receipt_handle,
                         event.context.function_name, event.context.get_remaining_time_in_millis()))
            if fail.get("raise"):
                raise RuntimeError("step broke")

    return app


def test_the_worker_delivers_each_message_to_the_apps_sqs_handler_as_lambda_would(tmp_path):
    seen, fail = [], {}
    [source] = sqs_sources(_stand_in_app(seen, fail))
    q = FolderQueue(tmp_path)
    worker = JobQueueWorker(source, q, region="eu-west-1", poll_interval=0.05).start()
    try:
        q.send({"job_id": "J1", "step": 0})
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    [(body, count, receipt, function, remaining)] = seen
    assert body == {"job_id": "J1", "step": 0} and count == 1 and receipt.endswith(".json")
    assert function == "run_jobs" and 0 < remaining <= 300_000
    assert q.counts() == {"pending": 0, "inflight": 0, "dead": 0}  # delivered, then deleted


def test_a_failed_delivery_stays_on_the_queue_and_keeps_its_error(tmp_path):
    seen, fail = [], {"raise": True}
    [source] = sqs_sources(_stand_in_app(seen, fail))
    q = FolderQueue(tmp_path)
    q.send({"job_id": "J1", "step": 0})
    [m] = q.receive(1, visibility_timeout=0)
    assert deliver(q, m, source.handler, queue_name="jobs-queue", region="eu-west-1") is False
    [again] = q.receive(1, visibility_timeout=0)
    assert again.receive_count == 2
    for _ in range(3):
        deliver(q, again, source.handler, queue_name="jobs-queue", region="eu-west-1")
        got = q.receive(1, visibility_timeout=0)
        again = got[0] if got else again
    [dead] = q.dead_letters()
    assert "RuntimeError: step broke" in dead.last_error


# --- the operator commands on DynamoDB Local ----------------------------------------------------------------------

BROKEN = {"on": True}


def _flaky(stores, job, deadline):
    from chalicelib.domain.jobs import StepResult

    if BROKEN["on"]:
        raise RuntimeError("the flaky step broke")
    return StepResult(state={}, processed=1, done=True)


@pytest.fixture
def local_jobs(ddb_table, monkeypatch, tmp_path):
    from chalicelib.config import reset_settings
    from chalicelib.domain import job_cases
    from chalicelib.handlers import jobs as jobs_handler

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("JOBS_QUEUE_URL", raising=False)
    monkeypatch.setattr(jobs_handler, "retry_delay", lambda count: 0)  # no backoff: the test has no time to wait
    reset_settings()
    job_cases.register_kind("flaky", _flaky)
    BROKEN["on"] = True
    yield tmp_path
    reset_settings()


def _start(tenant="t1"):
    from chalicelib.domain import job_cases
    from chalicelib.tables.stores import Stores

    return job_cases.start_job(Stores(tenant), "flaky", {})


def _status(job_id, tenant="t1"):
    from chalicelib.domain import job_cases
    from chalicelib.tables.stores import Stores

    return job_cases.get_job(Stores(tenant), "flaky", job_id).status


def test_jobs_run_fails_a_broken_job_after_five_receives_and_list_and_show_tell(local_jobs, capsys):
    from chalicelib.local.__main__ import main

    job = _start()
    assert main(["jobs", "run"]) == 1
    assert "delivered 0 job messages, 5 failed" in capsys.readouterr().out
    assert main(["jobs", "list", "--kind", "flaky"]) == 0
    listed = capsys.readouterr().out
    assert job.id in listed and "failed" in listed and "the flaky step broke" in listed
    assert "1 dead letters" in listed
    assert main(["jobs", "show", job.id, "--tenant", "t1", "--kind", "flaky"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "failed" and shown["error"] == "RuntimeError: the flaky step broke"
    assert shown["attempts"] == 5


def test_jobs_replay_runs_dead_letters_again_once_fixed(local_jobs, capsys):
    from chalicelib.local.__main__ import main

    job = _start()
    main(["jobs", "run"])
    BROKEN["on"] = False
    assert main(["jobs", "replay"]) == 0
    out = capsys.readouterr().out
    assert "back on the queue" in out and "delivered 1 job messages, 0 failed" in out
    assert _status(job.id) == "done"
    main(["jobs", "list"])
    assert "0 dead letters" in capsys.readouterr().out


def test_jobs_retry_runs_a_failed_job_again_and_refuses_one_not_failed(local_jobs, capsys):
    from chalicelib.local.__main__ import main

    job = _start()
    main(["jobs", "run"])
    BROKEN["on"] = False
    assert main(["jobs", "retry", job.id, "--tenant", "t1", "--kind", "flaky"]) == 0
    assert _status(job.id) == "done"
    assert main(["jobs", "retry", job.id, "--tenant", "t1", "--kind", "flaky"]) == 1
    assert "only a failed job can be retried" in capsys.readouterr().err
    assert main(["jobs", "show", "nope", "--tenant", "t1", "--kind", "flaky"]) == 1


def test_jobs_start_runs_a_job_once_per_id_and_refuses_unknown_kinds_and_bad_params(local_jobs, capsys):
    from chalicelib.local.__main__ import main

    BROKEN["on"] = False
    assert main(["jobs", "start", "flaky", "--tenant", "t1", "--id", "once"]) == 0
    out = capsys.readouterr().out
    assert "job flaky once of tenant t1: queued" in out and "delivered 1 job messages, 0 failed" in out
    assert _status("once") == "done"
    assert main(["jobs", "start", "flaky", "--tenant", "t1", "--id", "once"]) == 0
    assert "once of tenant t1: done" in capsys.readouterr().out  # the same id starts nothing again
    assert main(["jobs", "start", "no_such_kind", "--tenant", "t1"]) == 2
    assert "unknown job kind 'no_such_kind'" in capsys.readouterr().err
    assert main(["jobs", "start", "flaky", "--tenant", "t1", "--params", "[1]"]) == 2
    assert "--params must be a JSON object" in capsys.readouterr().err
