"""The packaged template (`make package`): cfn-lint and the SAM translator accept it, and it declares every
trigger, the table, the buckets, SES, Cognito and one least-privilege policy per function."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deploy.package import FUNCTIONS, package

pytestmark = pytest.mark.slow

DATA_SERVICES = ("dynamodb:", "s3:", "ses:")


@pytest.fixture(scope="module", params=["prod"])
def built(request, tmp_path_factory, monkeypatch_module) -> Path:
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    return package(request.param, tmp_path_factory.mktemp("package"))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def template(built) -> dict:
    return json.loads(built.read_text())


def _res(template, kind):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_cfn_lint_finds_nothing(built):
    result = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(built)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_the_sam_translator_accepts_it(template, monkeypatch):
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self):
            return {}

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    uploaded = json.loads(json.dumps(template))
    for resource in _res(uploaded, "AWS::Serverless::Function").values():
        resource["Properties"]["CodeUri"] = "s3://artifacts/deployment.zip"  # what `cloudformation package` does
    out = transform(uploaded, {"PortalTokenSecret": "p" * 32, "NodeWebhookSecret": "n" * 16}, NoManagedPolicies())
    kinds = [r["Type"] for r in out["Resources"].values()]
    assert kinds.count("AWS::Lambda::Function") == 5 and "AWS::Lambda::EventSourceMapping" in kinds


def test_every_handler_has_its_trigger(template):
    functions = _res(template, "AWS::Serverless::Function")
    assert {f["Properties"]["Handler"] for f in functions.values()} == {
        "app.app", "app.on_table_stream", "app.refresh_segments", "app.recalculate_scores", "app.on_inbound_email"}
    stream = functions["OnTableStream"]["Properties"]["Events"]["OnTableStreamDynamodbEventSource"]
    assert stream["Type"] == "DynamoDB"
    assert stream["Properties"]["Stream"] == {"Fn::GetAtt": ["ClientTable", "StreamArn"]}
    assert stream["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert functions["OnTableStream"]["Properties"]["ReservedConcurrentExecutions"] > 0
    schedules = {name: f["Properties"]["Events"] for name, f in functions.items() if name.startswith("Re")}
    assert schedules["RefreshSegments"]["RefreshSegmentsEvent"]["Properties"]["Schedule"] == "rate(1 hour)"
    assert schedules["RecalculateScores"]["RecalculateScoresEvent"]["Properties"]["Schedule"] == "rate(1 day)"
    inbound = template["Resources"]["InboundEmailBucket"]["Properties"]["NotificationConfiguration"]
    [trigger] = inbound["LambdaConfigurations"]
    assert trigger["Function"] == {"Fn::GetAtt": ["OnInboundEmail", "Arn"]} and trigger["Event"] == "s3:ObjectCreated:*"
    permission = template["Resources"]["InboundEmailInvokePermission"]["Properties"]
    assert permission["Principal"] == "s3.amazonaws.com" and permission["FunctionName"] == {"Ref": "OnInboundEmail"}
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    assert "/v1/clients/{client_id}" in paths and "/v1/portal/invitations/accept" in paths


def test_the_table_has_its_keys_indexes_stream_ttl_and_recovery(template):
    table = template["Resources"]["ClientTable"]
    props = table["Properties"]
    assert table["DeletionPolicy"] == "Retain" and props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"KeyType": "HASH", "AttributeName": "pk"}, {"KeyType": "RANGE", "AttributeName": "sk"}]
    indexes = {i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in props["GlobalSecondaryIndexes"]}
    assert indexes == {"by_created": ["pk", "s_created"], "by_health": ["pk", "s_health"], "by_name": ["pk", "s_name"],
                       "gsi1": ["gsi1pk", "gsi1sk"], "gsi2": ["gsi2pk", "gsi2sk"]}
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_buckets_ses_and_cognito_are_declared(template):
    resources = template["Resources"]
    assert {"InboundEmailBucket", "AttachmentsBucket", "SenderIdentity", "StaffUserPool", "StaffUserPoolClient"} \
        <= resources.keys()
    rule = resources["InboundRule"]["Properties"]["Rule"]
    assert rule["Actions"] == [{"S3Action": {"BucketName": {"Ref": "InboundEmailBucket"}, "ObjectKeyPrefix": "inbound/"}}]
    env = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert env["TABLE_NAME"] == {"Ref": "ClientTable"} and "jwks.json" in json.dumps(env["AUTH_JWKS_URL"])
    body = resources["RestAPI"]["Properties"]["DefinitionBody"]
    assert body["securityDefinitions"]["staff"]["x-amazon-apigateway-authorizer"]["providerARNs"] == [
        {"Fn::GetAtt": ["StaffUserPool", "Arn"]}]
    assert body["paths"]["/v1/clients"]["get"]["security"] == [{"staff": []}]
    assert "security" not in body["paths"]["/v1/portal/me"]["get"]
    assert "security" not in body["paths"]["/v1/webhooks/node"]["post"]
    missing = resources["MissingRoute"]["Properties"]
    assert missing["StatusCode"] == "404" and "not_found" in missing["ResponseTemplates"]["application/json"]


def test_each_function_has_its_own_least_privilege_policy(template):
    granted = {}
    for function, role in FUNCTIONS.items():
        [policy] = template["Resources"][role]["Properties"]["Policies"]
        statements = policy["PolicyDocument"]["Statement"]
        for s in statements:
            assert not any(a == "*" or a.endswith(":*") for a in s["Action"]), (function, s)
            if any(a.startswith(DATA_SERVICES) for a in s["Action"]):
                assert "*" not in s["Resource"] and s["Resource"], (function, s)
        granted[function] = {a for s in statements for a in s["Action"]}
    assert all("dynamodb:Query" in actions for actions in granted.values())
    assert [f for f, a in granted.items() if "dynamodb:GetRecords" in a] == ["OnTableStream"]
    assert [f for f, a in granted.items() if "ses:SendRawEmail" in a] == ["APIHandler"]
    assert "s3:PutObject" not in granted["RefreshSegments"] | granted["RecalculateScores"] | granted["OnTableStream"]


def test_the_lambda_package_holds_only_what_the_runtime_lacks(built):
    zipped = built.parent / "deployment.zip"
    names = zipfile.ZipFile(zipped).namelist()
    assert "app.py" in names and any(n.startswith("pydantic/") for n in names)
    assert not any(n.startswith(("botocore/", "boto3/", "chalicelib/local/", "tests/")) for n in names)
    assert zipped.stat().st_size < 15_000_000
