"""The local server: JSON 404s, environment defaults, tokens, and the whole runtime around a stand-in app."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import jwt
import pytest
import requests
from chalice import Chalice

from chalicelib.local.__main__ import main
from chalicelib.local.dynamodb_local import JAVA_REQUIRED, free_port
from chalicelib.local.environment import apply_local_defaults
from chalicelib.local.server import make_server
from tests.ddb_local import ddb_client
from tests.local.server_process import PROJECT_DIR, ServerProcess

# A stand-in for app.py with every kind of handler the real one has; each writes what it got to events.jsonl.
STAND_IN_APP = '''
import json, os
from chalice import Chalice, Rate
app = Chalice(app_name="stand-in")

def record(kind, data):
    with open(os.path.join(os.environ["DATA_DIR"], "events.jsonl"), "a") as fh:
        fh.write(json.dumps({"kind": kind, "data": data}) + "\\n")

@app.route("/v1/health")
def health():
    return {"status": "ok"}

@app.on_dynamodb_record(stream_arn="arn:aws:dynamodb:eu-west-1:000000000000:table/t/stream/s")
def on_table_stream(event):
    record("stream", [r.keys for r in event])

@app.schedule(Rate(1, unit=Rate.MINUTES))
def refresh_segments(event):
    record("schedule", event.detail_type)

@app.on_s3_event(bucket="nexus-inbound-email")
def on_inbound_email(event):
    body = open(os.path.join(os.environ["S3_LOCAL_DIR"], event.bucket, event.key)).read()
    record("s3", body)
'''


def test_an_unknown_route_answers_the_404_envelope_instead_of_a_403():
    app = Chalice(app_name="gateway-test")

    @app.route("/v1/health")
    def health():
        return {"status": "ok"}

    server = make_server(app, "127.0.0.1", free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert requests.get(f"{base}/v1/health", timeout=5).json() == {"status": "ok"}
        for method in ("GET", "POST", "DELETE", "OPTIONS"):
            response = requests.request(method, f"{base}/v1/nothing/here?limit=5",
                                        headers={"Authorization": "Bearer x", "Origin": "https://spa.example"},
                                        timeout=5)
            assert response.status_code == 404
            assert response.headers["Content-Type"].startswith("application/json")
            request_id = response.headers["X-Request-Id"]  # contract §16: every answer, and its error envelope
            assert response.json() == {"error": {"code": "not_found",
                                                 "message": f"No route for {method} /v1/nothing/here",
                                                 "details": [], "request_id": request_id}}
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert "X-Request-Id" in response.headers["Access-Control-Expose-Headers"]
    finally:
        server.shutdown()
        server.server.server_close()


def test_local_defaults_fill_gaps_keep_given_values_and_persist_the_secret(tmp_path):
    env = {"DATA_DIR": str(tmp_path / "data"), "TABLE_NAME": "mine", "AWS_SESSION_TOKEN": "real"}
    apply_local_defaults(env)
    assert env["TABLE_NAME"] == "mine"
    assert env["EMAIL_SENDER"] == "outbox"  # never SES from a laptop
    assert env["S3_LOCAL_DIR"] == str(tmp_path / "data" / "s3")
    assert env["OUTBOX_DIR"] == str(tmp_path / "data" / "outbox")
    assert env["AUTH_ISSUER"] == "nexusrms-local" and env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_ACCESS_KEY_ID"].isalnum() and "AWS_SESSION_TOKEN" not in env
    assert env["NODE_WEBHOOK_SECRET"].startswith("whsec_")
    secret_file = tmp_path / "data" / "secret"
    assert secret_file.read_text().strip() == env["AUTH_JWT_SECRET"]
    assert secret_file.stat().st_mode & 0o077 == 0

    again = {"DATA_DIR": str(tmp_path / "data")}
    apply_local_defaults(again)
    assert again["AUTH_JWT_SECRET"] == env["AUTH_JWT_SECRET"]


def test_the_token_command_signs_with_the_persisted_secret(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AUTH_JWT_SECRET", raising=False)
    monkeypatch.delenv("AUTH_ISSUER", raising=False)
    (tmp_path / "secret").write_text("s3cret-from-an-earlier-run-of-the-local-server\n")
    try:
        assert main(["token", "--tenant", "acme", "--role", "agent,viewer", "--sub", "u1"]) == 0
        staff = capsys.readouterr().out.strip()
        assert main(["token", "--tenant", "acme", "--scope", "portal", "--client-id", "c1", "--sub", "ct1"]) == 0
        portal = capsys.readouterr().out.strip()
    finally:
        from chalicelib.config import reset_settings

        reset_settings()
    decode = {"key": "s3cret-from-an-earlier-run-of-the-local-server", "algorithms": ["HS256"],
              "issuer": "nexusrms-local"}
    claims = jwt.decode(staff, **decode)
    assert (claims["tenant_id"], claims["roles"], claims["sub"]) == ("acme", ["agent", "viewer"], "u1")
    claims = jwt.decode(portal, **decode)
    assert (claims["client_id"], claims["scope"], claims["sub"]) == ("c1", "portal", "ct1")
    assert "roles" not in claims


def test_without_java_the_run_says_so_in_one_line_and_fails(tmp_path):
    (tmp_path / "app.py").write_text(STAND_IN_APP)
    env = {"PATH": str(tmp_path / "no-bin"), "DATA_DIR": str(tmp_path / "data"), "PORT": str(free_port()),
           "PYTHONPATH": str(PROJECT_DIR), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "chalicelib.local", "run"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip() == JAVA_REQUIRED


def read_events(data_dir: Path, kind: str) -> list:
    path = data_dir / "events.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [e["data"] for e in map(json.loads, lines) if e["kind"] == kind]


def wait_until(condition, timeout: float, what: str, server: ServerProcess) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what} not seen within {timeout}s; server output:\n{server.output()[-3000:]}")
        time.sleep(0.05)
    return time.monotonic() - start


def put_item(endpoint: str, table: str, value: str) -> dict:
    client = ddb_client(endpoint)
    schema = client.describe_table(TableName=table)["Table"]["KeySchema"]
    item = {k["AttributeName"]: {"S": value} for k in schema}
    client.put_item(TableName=table, Item=item)
    return item


@pytest.mark.ddb
def test_the_run_feeds_streams_schedules_and_inbound_email_to_the_app(ddb_endpoint, tmp_path):
    (tmp_path / "app.py").write_text(STAND_IN_APP)
    data = tmp_path / "data"
    table = f"run-{os.getpid()}-{time.time_ns() % 10**6}"
    server = ServerProcess(data, cwd=tmp_path, env={
        "DYNAMODB_ENDPOINT": ddb_endpoint, "TABLE_NAME": table, "LOCAL_SCHEDULE_SCALE": "300"}).start()
    try:
        assert "staff token (tenant demo" in server.output()
        item = put_item(ddb_endpoint, table, "T#demo#X")
        elapsed = wait_until(lambda: read_events(data, "stream"), 2.0, "the stream record", server)
        assert read_events(data, "stream") == [[item]] and elapsed < 2.0

        (data / "inbound" / "first.eml").write_text("Subject: hi\n\nhello")
        wait_until(lambda: read_events(data, "s3"), 5.0, "the inbound email", server)
        assert read_events(data, "s3") == ["Subject: hi\n\nhello"]
        assert (data / "inbound" / "processed" / "first.eml").exists()

        wait_until(lambda: read_events(data, "schedule"), 3.0, "a scheduled run", server)  # every 0.2 s
        assert read_events(data, "schedule")[0] == "Scheduled Event"
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.output()


@pytest.mark.ddb
@pytest.mark.slow
def test_data_and_stream_positions_survive_a_restart_with_the_own_dynamodb_local(tmp_path):
    (tmp_path / "app.py").write_text(STAND_IN_APP)
    data = tmp_path / "data"
    env = {"DYNAMODB_LOCAL_PORT": str(free_port()), "LOCAL_SCHEDULE_SCALE": "0"}
    server = ServerProcess(data, cwd=tmp_path, env=env).start()
    endpoint = f"http://127.0.0.1:{env['DYNAMODB_LOCAL_PORT']}"
    try:
        item = put_item(endpoint, "nexus-client-management", "T#demo#kept")
        wait_until(lambda: read_events(data, "stream"), 2.0, "the stream record", server)
    finally:
        assert server.stop() == 0
    assert (data / "ddb" / "shared-local-instance.db").exists()
    assert not _port_open(int(env["DYNAMODB_LOCAL_PORT"])), "DynamoDB Local outlived the server"

    server = ServerProcess(data, cwd=tmp_path, env=env, port=server.port).start()
    try:
        items = ddb_client(endpoint).scan(TableName="nexus-client-management")["Items"]
        assert item in items
        second = put_item(endpoint, "nexus-client-management", "T#demo#new")
        wait_until(lambda: len(read_events(data, "stream")) >= 2, 2.0, "the second record", server)
        time.sleep(1.0)  # a redelivery of the first record would show up by now
        assert read_events(data, "stream") == [[item], [second]]
    finally:
        assert server.stop() == 0


def _port_open(port: int) -> bool:
    from chalicelib.local.dynamodb_local import port_in_use

    return port_in_use(port)
