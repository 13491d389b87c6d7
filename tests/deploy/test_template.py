"""The packaged template (`make package`): cfn-lint and the SAM translator accept it, and it declares every
trigger, the table, the buckets, SES, Cognito, CORS, the secrets' sources, the stream's dead letters, one
least-privilege policy per function, and what operating it needs: tracing, log groups, alarms and a dashboard."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.handlers.auth import INTEGRATION_SCOPE
from chalicelib.handlers.cors import ALLOW_HEADERS, EXPOSE_HEADERS
from deploy.package import FUNCTIONS, LOG_RETENTION_DAYS, METRICS, build_version, merge_template, package

pytestmark = pytest.mark.slow

DATA_SERVICES = ("dynamodb:", "s3:", "ses:", "sqs:", "secretsmanager:")
XRAY_WRITES = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
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


@pytest.fixture(scope="module")
def translated(template, monkeypatch_module) -> dict:
    """The template as CloudFormation deploys it, after the SAM transform."""
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self):
            return {}

    uploaded = json.loads(json.dumps(template))
    for resource in _res(uploaded, "AWS::Serverless::Function").values():
        resource["Properties"]["CodeUri"] = "s3://artifacts/deployment.zip"  # what `cloudformation package` does
    return transform(uploaded, {}, NoManagedPolicies())  # every parameter has a default, and none is a secret


def test_the_sam_translator_accepts_it(translated):
    out = translated
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
            if "*" in s["Resource"]:
                assert set(s["Action"]) <= set(XRAY_WRITES), (function, s)
        granted[function] = {a for s in statements for a in s["Action"]}
    assert all("dynamodb:Query" in actions for actions in granted.values())
    assert [f for f, a in granted.items() if "dynamodb:GetRecords" in a] == ["OnTableStream", "RunJobs"]
    assert [f for f, a in granted.items() if "ses:SendRawEmail" in a] == ["APIHandler"]
    assert "s3:PutObject" not in granted["RefreshSegments"] | granted["RecalculateScores"] | granted["OnTableStream"]
    assert [f for f, a in granted.items() if "sqs:ReceiveMessage" in a] == ["RunJobs"]


def test_the_lambda_package_holds_only_what_the_runtime_lacks(built):
    zipped = built.parent / "deployment.zip"
    names = zipfile.ZipFile(zipped).namelist()
    assert "app.py" in names and any(n.startswith("pydantic/") for n in names)
    assert not any(n.startswith(("botocore/", "boto3/", "chalicelib/local/", "tests/",
                                 "aws_lambda_powertools/event_handler/")) for n in names)
    assert zipped.stat().st_size < 15_000_000


def test_the_packaged_telemetry_imports_from_the_lambda_package_alone(built, tmp_path):
    zipfile.ZipFile(built.parent / "deployment.zip").extractall(tmp_path)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter; "
            "from aws_lambda_powertools.metrics import EphemeralMetrics; from aws_lambda_powertools import Tracer; "
            "import aws_lambda_powertools as p; assert p.__file__.startswith(sys.argv[1]), p.__file__")
    assert subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True).returncode == 0


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


def test_the_stream_function_is_not_invoked_for_search_terms_day_counters_and_heartbeats(template):
    source = template["Resources"]["OnTableStream"]["Properties"]["Events"]["OnTableStreamDynamodbEventSource"]
    patterns = [json.loads(f["Pattern"]) for f in source["Properties"]["FilterCriteria"]["Filters"]]
    dropped = {"S": [{"anything-but": ["search", "day_count", "heartbeat"]}]}
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
    [work] = [s for s in _statements(template, "RunJobs") if s["Sid"] == "WorkJobs"]
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


def test_every_function_and_the_api_stage_trace_actively_and_may_write_segments(template, translated):
    for function in FUNCTIONS:
        assert template["Resources"][function]["Properties"]["Tracing"] == "Active", function
        [tracing] = [s for s in _statements(template, function) if s["Action"] == list(XRAY_WRITES)]
        assert tracing["Resource"] == ["*"], function  # X-Ray names no resource
    deployed = translated["Resources"]
    functions = [r["Properties"] for r in deployed.values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 6 and all(f["TracingConfig"] == {"Mode": "Active"} for f in functions)
    [stage] = [r["Properties"] for r in deployed.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    assert stage["TracingEnabled"] is True


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_function_logs_to_its_own_group_kept_for_the_stages_retention(stage, template):
    resources = merge_template(stage)["Resources"]
    groups = {g["Properties"]["LogGroupName"]["Fn::Sub"]: g["Properties"]["RetentionInDays"]
              for g in resources.values() if g.get("Type") == "AWS::Logs::LogGroup"}
    assert groups == {f"/aws/lambda/${{{function}}}": LOG_RETENTION_DAYS[stage] for function in FUNCTIONS}
    assert LOG_RETENTION_DAYS == {"dev": 14, "prod": 90}
    assert not any("FunctionName" in template["Resources"][f]["Properties"] for f in FUNCTIONS)  # Ref is its name
    assert _res(template, "AWS::Logs::LogGroup").keys() == {f"{function}LogGroup" for function in FUNCTIONS}


API = [("ApiName", "nexus-client-management"), ("Stage", "prod")]
STREAM = [("FunctionName", {"Ref": "OnTableStream"})]
TABLE = [("TableName", {"Ref": "ClientTable"})]
ALARMS = [  # alarm, namespace, its metrics, some of their dimensions, threshold
    ("ApiErrorRateAlarm", "AWS/ApiGateway", ["5XXError"], API, 0.01),
    ("ApiLatencyAlarm", "AWS/ApiGateway", ["Latency"], API, 3000),
    ("StreamIteratorAgeAlarm", "AWS/Lambda", ["IteratorAge"], STREAM, 300_000),
    ("StreamDestinationFailureAlarm", "AWS/Lambda", ["DestinationDeliveryFailures"], STREAM, 0),
    ("StreamFailureAlarm", "AWS/SQS", ["ApproximateNumberOfMessagesVisible"],
     [("QueueName", {"Fn::GetAtt": ["StreamFailureQueue", "QueueName"]})], 0),
    ("JobsDeadLetterAlarm", "AWS/SQS", ["ApproximateNumberOfMessagesVisible"],
     [("QueueName", {"Fn::GetAtt": ["JobsDeadLetterQueue", "QueueName"]})], 0),
    ("ScheduleFailureAlarm", "AWS/Lambda", ["Errors", "Errors"],
     [("FunctionName", {"Ref": "RefreshSegments"}), ("FunctionName", {"Ref": "RecalculateScores"})], 0),
    ("JobsFailedAlarm", {"Fn::Sub": "NexusRMS/ClientManagement/${Stage}"}, ["JobsFailed"],
     [("service", "client-management")], 0),
    ("ThrottleAlarm", "AWS/Lambda", ["Throttles"] * 6, [("FunctionName", {"Ref": f}) for f in FUNCTIONS], 0),
    ("TableThrottleAlarm", "AWS/DynamoDB", ["ReadThrottleEvents", "WriteThrottleEvents"], TABLE, 0),
]


@pytest.mark.parametrize(("name", "namespace", "metrics", "dims", "threshold"), ALARMS, ids=[a[0] for a in ALARMS])
def test_the_alarm_watches_its_metric_and_tells_the_alarm_topic(template, name, namespace, metrics, dims, threshold):
    alarm = template["Resources"][name]
    props = alarm["Properties"]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    watched = [q["MetricStat"]["Metric"] for q in props["Metrics"] if "MetricStat" in q] if "Metrics" in props \
        else [props]
    assert [m["MetricName"] for m in watched] == metrics
    assert all(m["Namespace"] == namespace for m in watched)
    found = [json.dumps([d["Name"], d["Value"]]) for m in watched for d in m["Dimensions"]]
    assert {json.dumps(list(d)) for d in dims} <= set(found)
    if "Metrics" in props:  # one metric math answer: the sum of them
        assert [q["Expression"] for q in props["Metrics"] if q.get("ReturnData")] == ["SUM(METRICS())"]
    assert props["Threshold"] == threshold and props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["AlarmActions"] == props["OKActions"] == [{"Ref": "AlarmTopic"}]
    assert props["TreatMissingData"] == "notBreaching" and '"Operate it"' in props["AlarmDescription"]


def test_the_api_alarms_watch_the_api_and_stage_this_template_makes(template):
    api = template["Resources"]["RestAPI"]["Properties"]
    assert dict(API) == {"ApiName": api["DefinitionBody"]["info"]["title"], "Stage": api["StageName"]}
    latency = template["Resources"]["ApiLatencyAlarm"]["Properties"]
    assert latency["ExtendedStatistic"] == "p95" and latency["EvaluationPeriods"] == 3
    errors = template["Resources"]["ApiErrorRateAlarm"]["Properties"]
    assert errors["Statistic"] == "Average" and (errors["DatapointsToAlarm"], errors["EvaluationPeriods"]) == (2, 3)


def _dashboard(template) -> dict:
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    variables = set(re.findall(r"\$\{([^}]+)\}", body))
    assert {"Stage", "AWS::Region"} <= variables
    known = {"AWS::Region", *template["Parameters"], *template["Resources"]}
    assert {v.split(".")[0] for v in variables} <= known  # every ${...} is something Fn::Sub resolves
    return json.loads(re.sub(r"\$\{[^}]+\}", "x", body))


def test_the_dashboard_is_json_once_substituted_and_shows_every_metric_of_the_app(template):
    dashboard = template["Resources"]["Dashboard"]["Properties"]
    assert dashboard["DashboardName"] == {"Fn::Sub": "nexus-client-management-${Stage}"}
    assert template["Outputs"]["DashboardName"] == {"Value": {"Ref": "Dashboard"}}
    widgets = _dashboard(template)["widgets"]
    shown = json.dumps([w["properties"]["metrics"] for w in widgets])
    assert [m for m in METRICS if f'"{m}"' not in shown and f'\\"{m}\\"' not in shown] == []
    assert all(w["properties"]["region"] == "x" for w in widgets)
    for aws in ("5XXError", "IteratorAge", "ApproximateNumberOfMessagesVisible", "Throttles", "Duration"):
        assert f'"{aws}"' in shown, aws


def test_every_function_knows_its_service_namespace_stage_and_build(template):
    for function in FUNCTIONS:
        variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["POWERTOOLS_SERVICE_NAME"] == "client-management", function
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == {"Fn::Sub": "NexusRMS/ClientManagement/${Stage}"}
        assert variables["LOG_LEVEL"] == "INFO" and variables["STAGE"] == {"Ref": "Stage"}, function
        assert re.fullmatch(r"[0-9a-f]{12}(-dirty)?|unknown", variables["BUILD_VERSION"]), function
        assert ("STREAM_FAILURE_QUEUE_URL" in variables) == (function == "RunJobs"), function
    assert template["Resources"]["RunJobs"]["Properties"]["Environment"]["Variables"]["STREAM_FAILURE_QUEUE_URL"] \
        == {"Ref": "StreamFailureQueue"}


def test_the_build_version_is_unknown_outside_git_or_without_it(tmp_path, monkeypatch):
    assert build_version(tmp_path) == "unknown"  # not a repository
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
    assert build_version() == "unknown"


def test_the_jobs_worker_may_replay_the_streams_dead_letters(template):
    statements = {s["Sid"]: s for s in _statements(template, "RunJobs")}
    replay, read = statements["ReplayStreamFailures"], statements["ReadStream"]
    assert sorted(replay["Action"]) == ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    assert replay["Resource"] == [{"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}]
    assert sorted(read["Action"]) == ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
    assert read["Resource"] == [{"Fn::GetAtt": ["ClientTable", "StreamArn"]}]
