"""Handler tests: the real Chalice app through its test client, on moto's DynamoDB."""
from __future__ import annotations

import json

import pytest
from moto import mock_aws

from chalicelib.config import reset_settings
from chalicelib.tables import create_table, reset_connections
from chalicelib.tokens import mint_token
from tests.api import openapi_check

ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "TABLE_NAME": "client-management-test", "AUTH_JWT_SECRET": "test-secret-of-enough-length-for-hs256",
    "AUTH_ISSUER": "nexusrms-test",
}


@pytest.fixture
def aws(monkeypatch, tmp_path):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DYNAMODB_ENDPOINT", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    reset_settings()
    reset_connections()
    with mock_aws():
        create_table()
        monkeypatch.setenv("JOBS_QUEUE_URL", _jobs_queue())
        reset_settings()
        yield
    reset_connections()
    reset_settings()


def _jobs_queue() -> str:
    """The jobs queue on moto, with its dead-letter queue after 5 receives, as the template declares them."""
    from chalicelib import aws, queue

    queue.reset_clients()
    sqs = aws.client("sqs", region_name=ENV["AWS_DEFAULT_REGION"])
    dlq = sqs.create_queue(QueueName="jobs-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs.create_queue(QueueName="jobs", Attributes={
        "VisibilityTimeout": str(queue.VISIBILITY_TIMEOUT),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.MAX_RECEIVES})},
    )["QueueUrl"]


def run_queued_jobs(limit: int = 1000) -> int:
    """Deliver every queued job message to app.run_jobs, as the SQS trigger would, until the queue is empty;
    answers how many deliveries were made. A failed delivery comes back at once (its backoff is skipped).
    Moto's SQS when JOBS_QUEUE_URL is set (the `aws` fixture), else the folder queue under DATA_DIR."""
    from chalice.local import LambdaContext

    import app as app_module
    from chalicelib import queue
    from chalicelib.config import get_settings
    from chalicelib.local.job_queue import deliver

    context = LambdaContext("run_jobs", memory_size=512, max_runtime_ms=300_000)
    url = get_settings().jobs_queue_url
    delivered = 0
    while delivered < limit:
        if url:
            sqs = queue._sqs(get_settings().region)
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"],
                                      WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return delivered
            message = got[0]
            record = {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
                      "body": message["Body"], "attributes": message.get("Attributes", {}),
                      "messageAttributes": {}, "md5OfBody": message["MD5OfBody"], "eventSource": "aws:sqs",
                      "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:jobs", "awsRegion": "eu-west-1"}
            delivered += 1
            try:
                app_module.run_jobs({"Records": [record]}, context)
            except Exception:  # as Lambda: the message stays; here it is visible again at once
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                              VisibilityTimeout=0)
                continue
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        else:
            folder = queue.folder()
            got = folder.receive(1)
            if not got:
                return delivered
            delivered += 1
            if not deliver(folder, got[0], app_module.run_jobs, queue_name="jobs", region="eu-west-1"):
                receipt = folder.receipt_of(got[0].id)
                if receipt:
                    folder.change_visibility(receipt, 0)
    return delivered


class Api:
    """A thin JSON wrapper over chalice.test.Client with a bearer token."""

    def __init__(self, http, tenant="t1", roles=("admin",)):
        self.http = http
        self.token = mint_token(tenant, list(roles), sub="user-1")

    def as_(self, tenant="t1", roles=("admin",)) -> Api:
        return Api(self.http, tenant, roles)

    def call(self, method, path, body=None, headers=None, raw=None):
        h = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json", **(headers or {})}
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = self.http.http.request(method, path, headers=h, body=data)
        response.data = json.loads(response.body) if response.body and \
            response.headers.get("Content-Type", "").startswith("application/json") else response.body
        wrong = openapi_check.problems(method, path, response.status_code, response.headers.get("Content-Type"),
                                       response.body)
        if wrong:  # every answer a test gets must be one the OpenAPI document promises
            pytest.fail("the answer disagrees with /v1/openapi.json:\n" + "\n".join(wrong), pytrace=False)
        return response

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)


@pytest.fixture
def api(aws):
    from chalice.test import Client

    import app as app_module

    with Client(app_module.app) as http:
        yield Api(http)


class PortalUser(Api):
    """A contact signed in to the portal with the token the accept call answered."""

    def __init__(self, http, token):
        self.http, self.token = http, token


@pytest.fixture
def local_mail(monkeypatch):
    """Mail and portal links as the local run makes them: the outbox under DATA_DIR, the default portal URL."""
    for name in ("OUTBOX_DIR", "EMAIL_SENDER", "PORTAL_URL", "PORTAL_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)
