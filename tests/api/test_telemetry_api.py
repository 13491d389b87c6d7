"""What an operator reads: one JSON log line and one EMF metric set per request, stream batch, schedule and email."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib import telemetry
from chalicelib.config import reset_settings
from chalicelib.tokens import mint_token


@pytest.fixture
def files(aws, monkeypatch, tmp_path):
    """The JSON log lines and EMF lines written to files, as the local run writes them (stdout in AWS)."""
    logs, metrics = tmp_path / "service.jsonl", tmp_path / "metrics.jsonl"
    monkeypatch.setenv("LOG_FILE", str(logs))
    monkeypatch.setenv("METRICS_FILE", str(metrics))
    reset_settings()
    telemetry.reset()
    yield logs, metrics
    telemetry.reset()
    monkeypatch.delenv("LOG_FILE")
    monkeypatch.delenv("METRICS_FILE")
    reset_settings()


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def requests_logged(path: Path) -> list[dict]:
    return [line for line in lines(path) if line.get("invocation") == "request"]


@pytest.fixture
def http(aws):
    import app as app_module

    with Client(app_module.app) as client:
        yield client.http


def auth(role: str = "admin", tenant: str = "t1") -> dict:
    return {"Authorization": f"Bearer {mint_token(tenant, [role])}", "Content-Type": "application/json"}


def test_a_requests_log_line_carries_the_request_id_of_its_answer_and_who_called(http, files):
    logs, _ = files
    body = json.dumps({"name": "Ana Núñez Events", "email": "ana@acme.example"})
    created = http.post("/v1/clients", body=body, headers={**auth("agent"), "Idempotency-Key": "key-1"})
    replayed = http.post("/v1/clients", body=body, headers={**auth("agent"), "Idempotency-Key": "key-1"})
    client_id = json.loads(created.body)["id"]
    http.get(f"/v1/clients/{client_id}", headers=auth("viewer"))

    first, second, read = requests_logged(logs)
    assert first["request_id"] == created.headers["X-Request-Id"]
    assert second["request_id"] == replayed.headers["X-Request-Id"] != first["request_id"]
    assert {k: first[k] for k in ("method", "route", "status", "tenant", "principal", "role", "idempotency_key",
                                  "replayed")} == {
        "method": "POST", "route": "/v1/clients", "status": 201, "tenant": "t1", "principal": "staff",
        "role": "agent", "idempotency_key": "key-1", "replayed": False}
    assert second["replayed"] is True and second["status"] == 201
    assert read["route"] == "/v1/clients/{client_id}" and read["role"] == "viewer"  # the template, not the id
    assert first["duration_ms"] > 0 and first["db_calls"] >= 1
    text = logs.read_text()
    assert "ana@acme.example" not in text and "Núñez" not in text and "Nu\\u00f1ez" not in text


def test_an_error_answer_names_its_request_id_in_the_envelope_and_in_its_log_line(http, files):
    logs, _ = files
    answer = http.get("/v1/clients/nope", headers=auth())
    (line,) = requests_logged(logs)
    assert answer.status_code == 404
    assert json.loads(answer.body)["error"]["request_id"] == answer.headers["X-Request-Id"] == line["request_id"]
    assert line["status"] == 404


def test_each_request_writes_an_emf_metric_set_by_route(http, files):
    _, metrics = files
    http.get("/v1/clients", headers=auth())
    http.get("/v1/clients/nope", headers=auth())
    listed, missing = [m for m in lines(metrics) if "route" in m]
    emf = listed["_aws"]["CloudWatchMetrics"][0]
    assert emf["Namespace"] == "NexusRMS/ClientManagement/local"
    assert emf["Dimensions"] == [["route", "service"]]
    assert {m["Name"] for m in emf["Metrics"]} >= {"Requests", "Errors4xx", "Errors5xx", "Latency", "DynamoDBCalls",
                                                    "ConsumedCapacity"}
    assert listed["route"] == "GET /v1/clients" and listed["Requests"] == [1.0] and listed["Errors4xx"] == [0.0]
    assert listed["DynamoDBCalls"][0] >= 1
    assert missing["route"] == "GET /v1/clients/{client_id}" and missing["Errors4xx"] == [1.0]


def test_log_format_text_writes_the_same_fields_for_people(http, files, monkeypatch, capsys):
    monkeypatch.setenv("LOG_FORMAT", "text")
    reset_settings()
    telemetry.reset()
    http.get("/v1/health")
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if "GET /v1/health" in x]
    assert " INFO chalicelib.telemetry: GET /v1/health" in line and "status=200" in line and "request_id=" in line
    assert not line.lstrip().startswith("{")


def test_a_stream_batch_logs_its_records_effects_and_failures(aws, files):
    from chalicelib.handlers.stream import handle_stream_batch

    logs, metrics = files

    class Broken:  # a record that cannot be decoded: reported as failed
        sequence_number = "100"
        timestamp = None

        def to_dict(self):
            raise ValueError("not a stream record")

    answer = handle_stream_batch([Broken()])
    (line,) = [x for x in lines(logs) if x.get("invocation") == "stream"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": "100"}]}
    assert (line["records"], line["failures"], line["effects"]) == (1, 1, 0)
    (emf,) = [m for m in lines(metrics) if "StreamRecords" in m]
    assert emf["StreamRecords"] == [1.0] and emf["StreamRecordsFailed"] == [1.0]


def test_an_inbound_email_for_nobody_logs_rejected_with_its_reason_and_no_address(aws, files, monkeypatch):
    from chalicelib import aws as aws_clients
    from chalicelib.handlers.events import handle_inbound_email

    monkeypatch.delenv("S3_LOCAL_DIR", raising=False)  # moto's S3, whatever a local run left in the environment
    reset_settings()
    logs, metrics = files
    s3 = aws_clients.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="inbound-mail", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="inbound-mail", Key="inbound/1",
                  Body=b"From: Ana <ana@acme.example>\r\nTo: x@nowhere.example\r\nSubject: Hello\r\n"
                       b"Message-ID: <m1@acme.example>\r\n\r\nSecret body\r\n")

    assert handle_inbound_email("inbound-mail", "inbound/1") == {"status": "rejected", "reason": "unknown recipient"}
    (line,) = [x for x in lines(logs) if x.get("invocation") == "inbound"]
    assert (line["outcome"], line["matched"], line["reason"], line["attachments"]) == (
        "rejected", False, "unknown recipient", 0)
    text = logs.read_text()
    assert "ana@acme.example" not in text and "x@nowhere.example" not in text and "Secret body" not in text
    assert any(m.get("InboundRejected") == [1.0] for m in lines(metrics))


def test_a_schedule_run_logs_the_tenants_it_started_jobs_for(http, files):
    from chalicelib.handlers import events

    http.post("/v1/clients", body=json.dumps({"name": "Acme"}), headers=auth())
    logs, _ = files
    events.refresh_segments()
    (line,) = [x for x in lines(logs) if x.get("invocation") == "schedule"]
    assert line["function"] == "refresh_segments" and line["tenants"] == 1 and line["unfinished"] is False


def test_the_deep_health_check_is_for_admins_and_shows_the_stream_and_the_last_schedule_runs(http, files):
    from chalicelib.handlers import events
    from chalicelib.tables import heartbeats

    assert http.get("/v1/health?deep=true").status_code == 401
    assert http.get("/v1/health?deep=true", headers=auth("manager")).status_code == 403
    assert "stream" not in json.loads(http.get("/v1/health").body)
    http.post("/v1/clients", body=json.dumps({"name": "Acme"}), headers=auth())
    events.recalculate_scores()
    from datetime import UTC, datetime

    heartbeats.beat("stream", datetime.now(UTC), lag_seconds=1.5, records=12)

    deep = json.loads(http.get("/v1/health?deep=true", headers=auth()).body)
    assert deep["stream"]["lag_seconds"] == 1.5 and deep["stream"]["records"] == 12
    assert deep["stream"]["seconds_since_last_batch"] >= 0
    assert deep["schedules"]["refresh_segments"] is None
    assert deep["schedules"]["rescore"]["tenants"] == 1 and deep["schedules"]["rescore"]["status"] == "done"


def test_the_jobs_worker_process_runs_every_job_kind_the_schedules_start():
    # The worker Lambda imports app and its handler module only; the schedules' kinds were registered elsewhere.
    code = ("import app; from chalicelib.handlers import jobs; from chalicelib.domain import job_cases;"
            "print(' '.join(job_cases.kinds()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2]).stdout.split()
    assert {"rescore", "refresh_segments", "rescore_fanout", "refresh_segments_fanout"} <= set(out)
