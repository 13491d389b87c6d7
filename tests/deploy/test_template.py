"""The packaged template (`make package`): cfn-lint and the SAM translator accept it, and it declares every
trigger, the table, the buckets, SES, Cognito, CORS, the secrets' sources, the stream's dead letters and one
least-privilege policy per function."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.handlers.auth import INTEGRATION_SCOPE
from chalicelib.handlers.cors import ALLOW_HEADERS, EXPOSE_HEADERS
from deploy.package import FUNCTIONS, package

pytestmark = pytest.mark.slow

DATA_SERVICES = ("dynamodb:", "s3:", "ses:", "sqs:", "secretsmanager:")
ERROR_RESPONSES = ("MISSING_AUTHENTICATION_TOKEN", "UNAUTHORIZED", "ACCESS_DENIED", "DEFAULT_4XX", "DEFAULT_5XX")


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
    out = transform(uploaded, {}, NoManagedPolicies())  # every parameter has a default, and none is a secret
    kinds = [r["Type"] for r in out["Resources"].values()]
    assert kinds.count("AWS::Lambda::Function") == 6 and kinds.count("AWS::Lambda::EventSourceMapping") == 2
    [jobs] = [r["Properties"] for r in out["Resources"].values()
              if r["Type"] == "AWS::Lambda::EventSourceMapping" and "JobsQueue" in json.dumps(r)]
    assert jobs["EventSourceArn"] == {"Fn::GetAtt": ["JobsQueue", "Arn"]} and jobs["BatchSize"] == 1


def test_every_handler_has_its_trigger(template):
    functions = _res(template, "AWS::Serverless::Function")
    assert {f["Properties"]["Handler"] for f in functions.values()} == {
        "app.app", "app.on_table_stream", "app.refresh_segments", "app.recalculate_scores", "app.on_inbound_email",
        "app.run_jobs"}
    stream = functions["OnTableStream"]["Properties"]["Events"]["OnTableStreamDynamodbEventSource"]
    assert stream["Type"] == "DynamoDB"
    assert stream["Properties"]["Stream"] == {"Fn::GetAtt": ["ClientTable", "StreamArn"]}
    assert stream["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert functions["OnTableStream"]["Properties"]["ReservedConcurrentExecutions"] > 0
    schedules = {name: f["Properties"]["Events"] for name, f in functions.items() if name.startswith("Re")}
    assert functions["RunJobs"]["Properties"]["Events"]["RunJobsSqsEventSource"]["Type"] == "SQS"
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
    assert props["KeySchema"] == [{"KeyType": "HASH", "AttributeName": "pk"},
                                  {"KeyType": "RANGE", "AttributeName": "sk"}]
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
    assert rule["Actions"] == [{"S3Action": {"BucketName": {"Ref": "InboundEmailBucket"},
                                             "ObjectKeyPrefix": "inbound/"}}]
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
    assert [f for f, a in granted.items() if "sqs:ReceiveMessage" in a] == ["RunJobs"]


def test_the_lambda_package_holds_only_what_the_runtime_lacks(built):
    zipped = built.parent / "deployment.zip"
    names = zipfile.ZipFile(zipped).namelist()
    assert "app.py" in names and any(n.startswith("pydantic/") for n in names)
    assert not any(n.startswith(("botocore/", "boto3/", "chalicelib/local/", "tests/")) for n in names)
    assert zipped.stat().st_size < 15_000_000


def test_every_module_in_the_lambda_package_is_compiled_so_a_cold_start_compiles_nothing(built):
    names = set(zipfile.ZipFile(built.parent / "deployment.zip").namelist())
    tag = sys.implementation.cache_tag
    sources = [n for n in names if n.endswith(".py")]
    assert "chalicelib/domain/clients.py" in sources and any(n.startswith("pydantic/") for n in sources)
    missing = [n for n in sources if f"{n.rpartition('/')[0]}/__pycache__/{n.rpartition('/')[2][:-3]}.{tag}.pyc"
               .lstrip("/") not in names]
    assert missing == []
    with zipfile.ZipFile(built.parent / "deployment.zip") as package:
        header = package.read(f"chalicelib/domain/__pycache__/clients.{tag}.pyc")[:8]
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, unchecked: never compared with a mtime


def _paths(template) -> dict:
    return template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]


def _listed(value: str) -> set[str]:
    return {v.strip().lower() for v in value.strip("'").split(",")}


def test_every_route_path_answers_cors_preflights_through_the_function_without_a_token(template):
    paths = _paths(template)
    assert len(paths) > 40
    for path, methods in paths.items():
        options = methods.get("options")
        assert options is not None, path
        assert "security" not in options, path  # a browser's preflight carries no credentials
        integration = options["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy" and "APIHandler.Arn" in json.dumps(integration["uri"]), path


def test_only_staff_routes_pass_the_gateways_authorizer_integration_routes_are_verified_by_the_app(template):
    import app  # noqa: F401
    from chalicelib.handlers.routing import ROUTES

    paths = _paths(template)
    for route in ROUTES:
        operation = paths[route.path][route.method.lower()]
        if route.need in ("public", "portal", "integration"):
            assert "security" not in operation, (route.method, route.path)
        else:
            assert operation["security"] == [{"staff": []}], (route.method, route.path)
    assert any(r.need == "integration" for r in ROUTES)


def test_gateway_responses_carry_the_envelope_cors_and_the_request_id(template):
    responses = {r["Properties"]["ResponseType"]: r["Properties"]
                 for r in _res(template, "AWS::ApiGateway::GatewayResponse").values()}
    assert set(ERROR_RESPONSES) <= responses.keys()
    for kind, props in responses.items():
        headers = props["ResponseParameters"]
        assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == {
            "Fn::If": ["AnyOrigin", "'*'", "method.request.header.origin"]}, kind
        assert _listed(headers["gatewayresponse.header.Access-Control-Expose-Headers"]) == _listed(EXPOSE_HEADERS)
        assert headers["gatewayresponse.header.X-Request-Id"] == "context.requestId", kind
        body = props["ResponseTemplates"]["application/json"]
        assert '"request_id": "$context.requestId"' in body and '"details": []' in body, kind
        rendered = json.loads(body.replace("$context.error.messageString", '"m"').replace("$context.requestId", "r"))
        assert set(rendered["error"]) == {"code", "message", "details", "request_id"}, kind
    assert template["Conditions"]["AnyOrigin"] == {"Fn::Equals": [{"Ref": "CorsAllowOrigins"}, "*"]}


def test_allowed_origins_are_a_stage_parameter_and_prod_does_not_allow_every_origin(template):
    env = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert env["CORS_ALLOW_ORIGINS"] == {"Ref": "CorsAllowOrigins"}
    default = template["Parameters"]["CorsAllowOrigins"]["Default"]
    assert "*" not in default and all(o.startswith("https://") for o in default.split(","))
    assert {"authorization", "content-type", "idempotency-key", "if-match"} <= _listed(ALLOW_HEADERS)


def test_every_secret_has_a_real_source_and_none_is_a_plain_value(template):
    resources, parameters = template["Resources"], template["Parameters"]
    env = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    for name, secret in (("CURSOR_SECRET", "CursorSecret"), ("PORTAL_TOKEN_SECRET", "PortalTokenSecret")):
        assert env[name] == {"Fn::Sub": f"{{{{resolve:secretsmanager:${{{secret}}}:SecretString}}}}"}, name
        props = resources[secret]["Properties"]
        assert resources[secret]["Type"] == "AWS::SecretsManager::Secret" and "SecretString" not in props
        assert props["GenerateSecretString"]["PasswordLength"] >= 32
    # Shared with Node: a secret the operator stores; the template names it and never holds its value.
    node = {"Fn::Sub": "{{resolve:secretsmanager:${NodeWebhookSecretName}:SecretString}}"}
    assert env["NODE_WEBHOOK_SECRET"] == node
    assert parameters["NodeWebhookSecretName"]["Default"] == "nexusrms/prod/node-webhook-secret"  # a name
    assert not [p for p in parameters.values() if str(p.get("Default", "")).startswith("whsec_")]
    assert not [p for p in parameters.values() if p.get("NoEcho")]
    for function in FUNCTIONS:
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert "AUTH_JWT_SECRET" not in variables, function  # never a derived or local key in AWS
        for name, value in variables.items():
            if name.endswith("SECRET"):
                assert function == "APIHandler" and "resolve:secretsmanager" in json.dumps(value), (function, name)


def test_the_token_audience_is_the_user_pool_clients_and_modules_get_the_client_credentials_grant(template):
    resources = template["Resources"]
    env = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert env["AUTH_AUDIENCE"] == {"Fn::Sub": "${StaffUserPoolClient},${IntegrationUserPoolClient}"}
    for client in ("StaffUserPoolClient", "IntegrationUserPoolClient"):
        assert resources[client]["Type"] == "AWS::Cognito::UserPoolClient"
        assert resources[client]["Properties"]["UserPoolId"] == {"Ref": "StaffUserPool"}
    modules = resources["IntegrationUserPoolClient"]["Properties"]
    assert modules["AllowedOAuthFlows"] == ["client_credentials"] and modules["GenerateSecret"] is True
    assert modules["AllowedOAuthScopes"] == [INTEGRATION_SCOPE]
    server = resources["IntegrationResourceServer"]["Properties"]
    assert [f"{server['Identifier']}/{s['ScopeName']}" for s in server["Scopes"]] == [INTEGRATION_SCOPE]
    assert resources["StaffUserPoolDomain"]["Properties"]["UserPoolId"] == {"Ref": "StaffUserPool"}


def test_the_stream_retries_a_bounded_number_of_times_then_leaves_the_batch_in_a_dead_letter_queue(template):
    resources = template["Resources"]
    source = resources["OnTableStream"]["Properties"]["Events"]["OnTableStreamDynamodbEventSource"]["Properties"]
    assert source["BisectBatchOnFunctionError"] is True
    assert 0 < source["MaximumRetryAttempts"] <= 10
    assert 60 <= source["MaximumRecordAgeInSeconds"] <= 24 * 3600  # the stream keeps records 24 h
    queue_arn = {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}
    assert source["DestinationConfig"] == {"OnFailure": {"Type": "SQS", "Destination": queue_arn}}
    queue = resources["StreamFailureQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    senders = {function: s["Resource"] for function, role in FUNCTIONS.items()
               for s in resources[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
               if "sqs:SendMessage" in s["Action"]}
    assert senders["OnTableStream"] == [queue_arn]


def test_the_stream_function_is_not_invoked_for_search_terms_and_day_counters(template):
    source = template["Resources"]["OnTableStream"]["Properties"]["Events"]["OnTableStreamDynamodbEventSource"]
    patterns = [json.loads(f["Pattern"]) for f in source["Properties"]["FilterCriteria"]["Filters"]]
    dropped = {"S": [{"anything-but": ["search", "day_count"]}]}
    # inserts and updates by their new image; removals (no new image) by their old one
    assert patterns == [{"dynamodb": {"NewImage": {"kind": dropped}}},
                        {"eventName": ["REMOVE"], "dynamodb": {"OldImage": {"kind": dropped}}}]


def test_each_function_knows_its_timeout_and_events_wait_longer_for_the_database(template):
    for function in FUNCTIONS:
        props = template["Resources"][function]["Properties"]
        variables = props["Environment"]["Variables"]
        assert variables["FUNCTION_TIMEOUT"] == str(props["Timeout"]), function
        if function == "APIHandler":
            assert props["Timeout"] <= 30 and "DB_RETRY_BUDGET" not in variables  # the API keeps 2 s / 5 s / 20 s
        else:
            assert float(variables["DB_READ_TIMEOUT"]) == 10
            assert float(variables["DB_RETRY_BUDGET"]) == 60 < props["Timeout"], function


JOBS_ARN = {"Fn::GetAtt": ["JobsQueue", "Arn"]}


def _statements(template, function):
    [policy] = template["Resources"][FUNCTIONS[function]]["Properties"]["Policies"]
    return policy["PolicyDocument"]["Statement"]


def test_the_jobs_queue_outlasts_its_worker_and_dead_letters_after_five_receives(template):
    from chalicelib.domain.jobs import MAX_ATTEMPTS
    from chalicelib.queue import MAX_RECEIVES, VISIBILITY_TIMEOUT

    resources = template["Resources"]
    queue = resources["JobsQueue"]["Properties"]
    worker = resources["RunJobs"]["Properties"]
    assert resources["JobsQueue"]["Type"] == resources["JobsDeadLetterQueue"]["Type"] == "AWS::SQS::Queue"
    assert worker["Timeout"] == 300 and queue["VisibilityTimeout"] == VISIBILITY_TIMEOUT >= 6 * worker["Timeout"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": MAX_RECEIVES}
    assert MAX_RECEIVES == MAX_ATTEMPTS  # the worker fails the job on the receive after which SQS gives up
    assert queue["SqsManagedSseEnabled"] is True
    assert resources["JobsDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    trigger = worker["Events"]["RunJobsSqsEventSource"]
    assert trigger["Type"] == "SQS" and trigger["Properties"]["Queue"] == JOBS_ARN
    assert trigger["Properties"]["BatchSize"] == 1 and trigger["Properties"]["ScalingConfig"]["MaximumConcurrency"] > 1


def test_the_functions_that_start_job_steps_know_the_queue_and_may_only_send_to_it(template):
    resources = template["Resources"]
    senders = {f for f in FUNCTIONS for s in _statements(template, f)
               if "sqs:SendMessage" in s["Action"] and s["Resource"] == [JOBS_ARN]}
    assert senders == {"APIHandler", "RefreshSegments", "RecalculateScores", "RunJobs"}
    for function in FUNCTIONS:
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert (variables.get("JOBS_QUEUE_URL") == {"Ref": "JobsQueue"}) == (function in senders), function
    [work] = [s for s in _statements(template, "RunJobs") if "sqs:ReceiveMessage" in s["Action"]]
    assert sorted(work["Action"]) == ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                                      "sqs:ReceiveMessage"] and work["Resource"] == [JOBS_ARN]


def test_a_dead_letter_in_either_queue_raises_an_alarm(template):
    resources = template["Resources"]
    for alarm, queue in (("JobsDeadLetterAlarm", "JobsDeadLetterQueue"), ("StreamFailureAlarm", "StreamFailureQueue")):
        props = resources[alarm]["Properties"]
        assert resources[alarm]["Type"] == "AWS::CloudWatch::Alarm"
        assert props["Namespace"] == "AWS/SQS" and props["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert props["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
        assert props["Threshold"] == 0 and props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert resources["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    assert {"JobsQueueUrl", "JobsDeadLetterQueueUrl", "AlarmTopicArn"} <= template["Outputs"].keys()


def test_exports_expire_after_a_day_import_files_with_the_dead_letters_and_only_the_api_writes_exports(
        template):
    bucket = template["Resources"]["AttachmentsBucket"]["Properties"]
    assert {"Id": "ExpireExports", "Status": "Enabled", "Prefix": "exports/", "ExpirationInDays": 1} in \
        bucket["LifecycleConfiguration"]["Rules"]
    dead_letter_days = template["Resources"]["JobsDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] / 86400
    assert {"Id": "ExpireImportFiles", "Status": "Enabled", "Prefix": "imports/",
            "ExpirationInDays": dead_letter_days} in bucket["LifecycleConfiguration"]["Rules"]
    [exports] = [s for s in _statements(template, "APIHandler") if s["Sid"] == "Exports"]
    assert sorted(exports["Action"]) == ["s3:GetObject", "s3:PutObject"]
    assert exports["Resource"] == [{"Fn::Sub": "${AttachmentsBucket.Arn}/exports/*"}]
