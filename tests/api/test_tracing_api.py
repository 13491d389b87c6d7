"""X-Ray in Lambda: each request is a subsegment annotated with its route, DynamoDB and SES calls are subsegments."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.api.conftest import ENV

ROOT = Path(__file__).parents[2]
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def test_with_active_tracing_requests_dynamodb_and_ses_calls_are_sent_to_xray_as_subsegments():
    env = {**os.environ, **ENV, "AWS_LAMBDA_FUNCTION_NAME": "APIHandler", "LAMBDA_TASK_ROOT": str(ROOT),
           "_X_AMZN_TRACE_ID": TRACE, "EMAIL_SENDER": "ses", "DYNAMODB_ENDPOINT": ""}
    run = subprocess.run([sys.executable, str(ROOT / "tests/api/xray_probe.py")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    probe = json.loads(run.stdout.strip().splitlines()[-1])
    names = {s["name"] for s in probe["segments"]}
    assert probe["status"] == 200
    assert {"dynamodb", "email", "## request /v1/clients"} <= names  # botocore names SES by its endpoint
    operations = {(s["name"], s.get("aws", {}).get("operation")) for s in probe["segments"]}
    assert {("dynamodb", "Query"), ("email", "SendRawEmail")} <= operations
    request = next(s for s in probe["segments"] if s["name"] == "## request /v1/clients")
    assert request["annotations"] == {"route": "/v1/clients", "tenant": "t1", "status": 200}
    assert all(s["trace_id"] == TRACE.split(";")[0].removeprefix("Root=") for s in probe["segments"])


def test_without_xray_the_sdk_is_never_imported():
    code = ("import sys, app; from chalicelib import telemetry; telemetry.configure();"
            "sys.exit('aws_xray_sdk' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "AWS_XRAY_DAEMON_ADDRESS"}
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env).returncode == 0
