"""`make package STAGE=...`: `chalice package` merged with the resources Chalice does not create, least privilege.

Writes build/<stage>/sam.json (a SAM template) and build/<stage>/deployment.zip. Needs no AWS account: only
AWS_DEFAULT_REGION. The table is described from the PynamoDB models, so its keys and indexes have one source.
"""
from __future__ import annotations

import argparse
import compileall
import json
import os
import py_compile
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FUNCTIONS = {  # chalice's logical ids: function -> its role
    "APIHandler": "ApiHandlerRole", "OnTableStream": "OnTableStreamRole", "RefreshSegments": "RefreshSegmentsRole",
    "RecalculateScores": "RecalculateScoresRole", "OnInboundEmail": "OnInboundEmailRole", "RunJobs": "RunJobsRole",
}
ENQUEUERS = ("APIHandler", "RefreshSegments", "RecalculateScores", "RunJobs")  # functions that start job steps
JOBS_MAX_RECEIVES = 5  # chalicelib.queue.MAX_RECEIVES: the worker fails a job at its last receive
JOBS_VISIBILITY_TIMEOUT = 1800  # six times the worker's timeout (300 s), as AWS advises for Lambda triggers
DEAD_LETTER_DAYS = 14  # what the dead-letter queues keep (SQS's longest), and so an import's raw file
JOBS_MAX_CONCURRENCY = 50  # workers at once: a fan-out of 1,000 tenants must not take the API's concurrency
# The Lambda Python runtime ships these; leaving them out keeps the package small and the runtime's copy current.
# Named, not referenced: the bucket's notification needs the function, so the function may not need the bucket.
INBOUND_BUCKET = "nexus-client-management-inbound-${Stage}-${AWS::AccountId}"
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")
# Not shipped either: the local runtime, and Powertools' REST event handler (2.9 MB; we use its Logger's formatter,
# Metrics and Tracer only, none of which imports it).
UNUSED = ("chalicelib/local/", "aws_lambda_powertools/event_handler/")
RESOURCE_SERVER = "nexus-client-management"  # its `integration` scope is chalicelib.handlers.auth.INTEGRATION_SCOPE
# Who may call the API from a browser, per stage (the CorsAllowOrigins parameter overrides it).
CORS_ORIGINS = {"dev": "*", "prod": "https://app.nexusrms.io,https://portal.nexusrms.io"}
LOG_RETENTION_DAYS = {"dev": 14, "prod": 90}  # what each function's log group keeps
API_NAME = "nexus-client-management"  # the RestAPI's name: chalice names it (its swagger title) by the app
SERVICE = "client-management"  # POWERTOOLS_SERVICE_NAME: the `service` dimension of every metric of the app
NAMESPACE = "NexusRMS/ClientManagement/${Stage}"  # POWERTOOLS_METRICS_NAMESPACE (an Fn::Sub)
# The app's own (EMF) metrics, the contract with the code that emits them: each with the dimension `service` only,
# except ROUTE_METRICS, which are by `route` and `service`. The dashboard shows every one.
METRICS = ("Requests", "Latency", "DynamoDBCalls", "ConsumedCapacity", "StreamRecords", "StreamRecordsFailed",
           "JobStepsDone", "JobsFailed", "SegmentsRefreshed", "ClientsRescored", "InboundMatched", "InboundUnmatched",
           "InboundRejected", "WebhookProcessed", "WebhookDuplicate", "WebhookHeld", "EmailsSent", "EmailsFailed")
ROUTE_METRICS = ("Requests", "Latency", "DynamoDBCalls", "ConsumedCapacity")


def sub(text: str) -> dict:
    return {"Fn::Sub": text}


def table() -> dict:
    """The one table, from the PynamoDB models: keys, indexes, stream, TTL, point-in-time recovery, encryption."""
    from chalicelib.tables.base import TableItem

    schema = TableItem._get_schema()
    return {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
            "Properties": {
                "TableName": sub("nexus-client-management-${Stage}"),
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": schema["attribute_definitions"],
                "KeySchema": schema["key_schema"],
                "GlobalSecondaryIndexes": [{"IndexName": i["index_name"], "KeySchema": i["key_schema"],
                                            "Projection": i["projection"]} for i in schema["global_secondary_indexes"]],
                "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
                "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True}}}


def bucket(name: str, **extra: Any) -> dict:
    return {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
            "Properties": {"BucketName": sub(name),
                           "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                               {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
                           "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                              "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
                           **extra}}


# --- least privilege: one hand-written policy per function -----------------------------------------------------
TABLE_ITEMS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
               "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem"]


def statement(sid: str, actions: list[str], resources: list[Any]) -> dict:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}


def policies(function: str) -> list[dict]:
    """What each function may do, on exactly its resources (no dynamodb:*, no "*" for data)."""
    table_arns = [{"Fn::GetAtt": ["ClientTable", "Arn"]}, sub("${ClientTable.Arn}/index/*")]
    # The stack makes each log group (with its retention): a function only writes to it.
    logs = statement("Logs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                     [sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/*")])
    # X-Ray has no resource to name: "*" for these two actions only.
    tracing = statement("Tracing", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"])
    items = statement("TableItems", TABLE_ITEMS, table_arns)
    send = statement("SendMail", ["ses:SendRawEmail"],
                     [sub("arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderDomain}")])
    attachments = statement("Attachments", ["s3:GetObject", "s3:PutObject"], [sub("${AttachmentsBucket.Arn}/*")])
    enqueue = statement("EnqueueJobs", ["sqs:SendMessage"], [{"Fn::GetAtt": ["JobsQueue", "Arn"]}])
    stream = [{"Fn::GetAtt": ["ClientTable", "StreamArn"]}]
    read_stream = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
    exports = statement("Exports", ["s3:GetObject", "s3:PutObject"], [sub("${AttachmentsBucket.Arn}/exports/*")])
    per_function = {
        "APIHandler": [items, statement("TableHealth", ["dynamodb:DescribeTable"], table_arns[:1]), send,
                       attachments, exports, enqueue],
        "OnTableStream": [items, statement("TableStream", [*read_stream, "dynamodb:ListStreams"], stream),
                          statement("StreamFailures", ["sqs:SendMessage"],
                                    [{"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}])],
        "RefreshSegments": [items, enqueue],
        "RecalculateScores": [items, enqueue],
        "RunJobs": [items, enqueue, attachments, statement(
            "WorkJobs", ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                         "sqs:ChangeMessageVisibility"], [{"Fn::GetAtt": ["JobsQueue", "Arn"]}]),
                    # A replay of the stream's dead letters runs as a job: it reads them and their records.
                    statement("ReplayStreamFailures", ["sqs:ReceiveMessage", "sqs:DeleteMessage",
                                                       "sqs:GetQueueAttributes"],
                              [{"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}]),
                    statement("ReadStream", read_stream, stream)],
        "OnInboundEmail": [items, statement("InboundMail", ["s3:GetObject"],
                                                     [sub(f"arn:${{AWS::Partition}}:s3:::{INBOUND_BUCKET}/inbound/*")]),
                           attachments],
    }[function]
    return [{"PolicyName": f"{function}Policy",
             "PolicyDocument": {"Version": "2012-10-17", "Statement": [logs, tracing, *per_function]}}]


def secret_value(secret_id: str) -> dict:
    """A Secrets Manager value resolved by CloudFormation at deploy time (no call, no latency at cold start)."""
    return sub(f"{{{{resolve:secretsmanager:{secret_id}:SecretString}}}}")


def generated_secret(purpose: str) -> dict:
    """A secret of this stack only, generated by Secrets Manager: no value in the template or the repository."""
    return {"Type": "AWS::SecretsManager::Secret", "Properties": {
        "Name": sub(f"nexus-client-management/${{Stage}}/{purpose}"),
        "Description": f"{purpose} of nexus-client-management (generated; rotate by putting a new value and "
                       "redeploying)",
        "GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True}}}


def build_version(root: Path = ROOT) -> str:
    """The commit being packaged, `-dirty` with uncommitted changes, or `unknown` without git."""
    git = ["git", "--no-optional-locks", "-C", str(root)]  # no index refresh: others may be using the repository
    try:
        commit = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        changes = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if changes.strip() else commit


def environment(function: str, version: str) -> dict:
    """A function's variables: the resources of this stack and its telemetry; for the API, its secrets, token
    audience and CORS."""
    issuer = sub("https://cognito-idp.${AWS::Region}.amazonaws.com/${StaffUserPool}")
    variables: dict[str, Any] = {
        "TABLE_NAME": {"Ref": "ClientTable"}, "INBOUND_EMAIL_BUCKET": sub(INBOUND_BUCKET),
        "ATTACHMENTS_BUCKET": {"Ref": "AttachmentsBucket"}, "EMAIL_SENDER": "ses", "PORTAL_URL": {"Ref": "PortalUrl"},
        "POWERTOOLS_SERVICE_NAME": SERVICE, "POWERTOOLS_METRICS_NAMESPACE": sub(NAMESPACE), "LOG_LEVEL": "INFO",
        "STAGE": {"Ref": "Stage"}, "BUILD_VERSION": version}
    if function in ENQUEUERS:
        variables["JOBS_QUEUE_URL"] = {"Ref": "JobsQueue"}
    if function == "RunJobs":
        variables["STREAM_FAILURE_QUEUE_URL"] = {"Ref": "StreamFailureQueue"}  # a replay job reads it
    if function == "APIHandler":
        variables.update({
            "AUTH_ISSUER": issuer,
            "AUTH_JWKS_URL": {"Fn::Sub": ["${Issuer}/.well-known/jwks.json", {"Issuer": issuer}]},
            # The SPA's ID tokens name its client in `aud`; the modules' access tokens name theirs in `client_id`.
            "AUTH_AUDIENCE": sub("${StaffUserPoolClient},${IntegrationUserPoolClient}"),
            "CORS_ALLOW_ORIGINS": {"Ref": "CorsAllowOrigins"},
            "CURSOR_SECRET": secret_value("${CursorSecret}"),
            "PORTAL_TOKEN_SECRET": secret_value("${PortalTokenSecret}"),
            "NODE_WEBHOOK_SECRET": secret_value("${NodeWebhookSecretName}")})
    else:
        # Events have minutes, not API Gateway's 29 s: slower answers are waited for, and retried for longer.
        variables.update({"DB_READ_TIMEOUT": "10", "DB_RETRY_BUDGET": "60"})
    return {"Variables": variables}


EXPOSE_HEADERS = "Idempotent-Replayed, X-Request-Id, Retry-After"


def gateway_response(kind: str, status: str | None, code: str, message: str | None) -> dict:
    """API Gateway's own answers (unknown path, rejected token, throttling, timeouts) in the contract's error
    envelope, with the request id and the CORS headers, so that a browser can read them like the function's."""
    error = {"code": code, "message": "@message@", "details": [], "request_id": "$context.requestId"}
    body = json.dumps({"error": error}).replace('"@message@"', json.dumps(message) if message
                                                 else "$context.error.messageString")
    # A gateway response cannot check a list of origins: with "*" it says so, otherwise it echoes the caller's
    # origin. These bodies are the fixed envelopes above and no credentials are allowed, so nothing is disclosed.
    origin = {"Fn::If": ["AnyOrigin", "'*'", "method.request.header.origin"]}
    properties = {
        "RestApiId": {"Ref": "RestAPI"}, "ResponseType": kind, "ResponseTemplates": {"application/json": body},
        "ResponseParameters": {
            "gatewayresponse.header.Content-Type": "'application/json; charset=utf-8'",
            "gatewayresponse.header.X-Request-Id": "context.requestId",
            "gatewayresponse.header.Access-Control-Allow-Origin": origin,
            "gatewayresponse.header.Access-Control-Expose-Headers": f"'{EXPOSE_HEADERS}'",
            "gatewayresponse.header.Vary": "'Origin'"}}
    if status:
        properties["StatusCode"] = status
    return {"Type": "AWS::ApiGateway::GatewayResponse", "Properties": properties}


def gateway_responses() -> dict:
    return {
        "MissingRoute": gateway_response("MISSING_AUTHENTICATION_TOKEN", "404", "not_found", "no such route"),
        "Unauthorized": gateway_response("UNAUTHORIZED", "401", "unauthorized", "a valid bearer token is required"),
        "AccessDenied": gateway_response("ACCESS_DENIED", "403", "forbidden", "the token may not call this route"),
        "Throttled": gateway_response("THROTTLED", "429", "rate_limited", "too many requests; retry later"),
        "TooLarge": gateway_response("REQUEST_TOO_LARGE", "413", "payload_too_large", "the request is too large"),
        "TimedOut": gateway_response("INTEGRATION_TIMEOUT", "504", "unavailable",
                                     "the request timed out; its outcome is unknown: retry with the same "
                                     "Idempotency-Key"),
        # Whatever else the gateway refuses or fails keeps its status and says why.
        "Default4xx": gateway_response("DEFAULT_4XX", None, "bad_request", None),
        "Default5xx": gateway_response("DEFAULT_5XX", None, "internal_error", None),
    }


def stream_filter() -> dict:
    """Lambda's event filter on the table stream: every record except those of index-only items (their INSERT and
    MODIFY by the new image's kind, their REMOVE by the old one's), which no effect needs."""
    from chalicelib.tables.streams import INDEX_ONLY_KINDS

    kept = {"S": [{"anything-but": list(INDEX_ONLY_KINDS)}]}
    return {"Filters": [{"Pattern": json.dumps({"dynamodb": {"NewImage": {"kind": kept}}})},
                        {"Pattern": json.dumps({"eventName": ["REMOVE"], "dynamodb": {"OldImage": {"kind": kept}}})}]}


def dimensions(**values: Any) -> list[dict]:
    return [{"Name": name, "Value": value} for name, value in values.items()]


def metric(namespace: Any, name: str, stat: str, period: int, **dims: Any) -> dict:
    """One metric for an alarm (a percentile is an extended statistic)."""
    return {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions(**dims), "Period": period,
            ("ExtendedStatistic" if stat.startswith("p") else "Statistic"): stat}


def total(period: int, *metrics: tuple[str, str, dict]) -> dict:
    """Metric math for an alarm: the sum of several metrics' sums (namespace, name, dimensions)."""
    queries = [{"Id": f"m{i}", "ReturnData": False, "MetricStat": {
        "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions(**dims)},
        "Period": period, "Stat": "Sum"}} for i, (namespace, name, dims) in enumerate(metrics)]
    return {"Metrics": [*queries, {"Id": "total", "Expression": "SUM(METRICS())", "ReturnData": True}]}


def alarm(meaning: str, watched: dict, threshold: float = 0, periods: int = 1, breaching: int | None = None) -> dict:
    """An alarm to the AlarmTopic (and an OK when it clears) once `watched` is above `threshold` in `breaching` of
    the last `periods` periods (all of them by default); no data is no alarm."""
    topic = [{"Ref": "AlarmTopic"}]
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmDescription": f"{meaning} See README, \"Operate it\".", **watched, "Threshold": threshold,
        "ComparisonOperator": "GreaterThanThreshold", "EvaluationPeriods": periods,
        "DatapointsToAlarm": breaching or periods, "TreatMissingData": "notBreaching",
        "AlarmActions": topic, "OKActions": topic}}


def dead_letter_alarm(queue: str, what: str) -> dict:
    """An alarm as soon as a message waits in a dead-letter queue (something failed for good and needs a look)."""
    return alarm(f"{what}: its message waits in {queue} to be inspected and replayed.",
                 metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 300,
                        QueueName={"Fn::GetAtt": [queue, "QueueName"]}))


def alarms(stage: str) -> dict:
    """What pages someone: API errors and latency, a late or failing stream, failed schedules and jobs, throttling.
    Values: 5 min periods for the API (2 of 3 above 1 % errors, 3 of 3 above 3 s p95); the stream 5 min behind for
    3 minutes; any failure of a schedule or a job within the hour; any throttle within 5 minutes."""
    api = {"ApiName": API_NAME, "Stage": stage}
    stream = {"FunctionName": {"Ref": "OnTableStream"}}
    lambdas = [("AWS/Lambda", "Throttles", {"FunctionName": {"Ref": f}}) for f in FUNCTIONS]
    table_name = {"TableName": {"Ref": "ClientTable"}}
    return {
        "ApiErrorRateAlarm": alarm(
            "More than 1 % of API requests answered 5xx in 2 of the last 3 five-minute periods.",
            metric("AWS/ApiGateway", "5XXError", "Average", 300, **api), 0.01, 3, 2),
        "ApiLatencyAlarm": alarm(
            "The API's p95 latency was above 3 s for 15 minutes.",
            metric("AWS/ApiGateway", "Latency", "p95", 300, **api), 3000, 3),
        "StreamIteratorAgeAlarm": alarm(
            "The stream function is more than 5 minutes behind the table for 3 minutes: search, counters and "
            "effects are late.", metric("AWS/Lambda", "IteratorAge", "Maximum", 60, **stream), 300_000, 3),
        "StreamDestinationFailureAlarm": alarm(
            "Stream records given up on could not be put in StreamFailureQueue: they are lost.",
            metric("AWS/Lambda", "DestinationDeliveryFailures", "Sum", 300, **stream)),
        "ScheduleFailureAlarm": alarm(
            "The hourly segment refresh or the daily rescoring failed within the hour.",
            total(3600, *[("AWS/Lambda", "Errors", {"FunctionName": {"Ref": f}})
                          for f in ("RefreshSegments", "RecalculateScores")])),
        "JobsFailedAlarm": alarm(
            "A job failed within the hour (the app's JobsFailed metric).",
            metric(sub(NAMESPACE), "JobsFailed", "Sum", 3600, service=SERVICE)),
        "ThrottleAlarm": alarm("A function was throttled within 5 minutes: calls or events waited or failed.",
                               total(300, *lambdas)),
        "TableThrottleAlarm": alarm(
            "The table throttled reads or writes within 5 minutes.",
            total(300, ("AWS/DynamoDB", "ReadThrottleEvents", table_name),
                  ("AWS/DynamoDB", "WriteThrottleEvents", table_name))),
    }


def dashboard(stage: str) -> dict:
    """The stage's dashboard: the API, the app's metrics (per route where it has them), the stream, jobs, mail,
    webhooks, the table, the dead letters and every function."""
    def api(name: str, stat: str = "Sum") -> list:
        return ["AWS/ApiGateway", name, "ApiName", API_NAME, "Stage", stage, {"stat": stat}]

    def app(*names: str) -> list:
        return [[NAMESPACE, name, "service", SERVICE] for name in names]

    def by_route(name: str, stat: str) -> list:
        search = f"SEARCH('{{{NAMESPACE},route,service}} MetricName=\"{name}\"', '{stat}', 300)"
        return [{"expression": search, "id": "e1", "label": ""}]

    def per_function(name: str, stat: str) -> list:
        return [["AWS/Lambda", name, "FunctionName", f"${{{f}}}", {"stat": stat, "label": f}] for f in FUNCTIONS]

    graphs = [
        ("API requests, 4xx, 5xx", [api("Count"), api("4XXError"), api("5XXError")]),
        ("API latency p50 / p95 (ms)", [api("Latency", "p50"), api("Latency", "p95")]),
        ("Requests by route", by_route("Requests", "Sum")),
        ("Latency by route, p95 (ms)", by_route("Latency", "p95")),
        ("Stream records, failed; iterator age (ms, right)", [
            *app("StreamRecords", "StreamRecordsFailed"),
            ["AWS/Lambda", "IteratorAge", "FunctionName", "${OnTableStream}", {"stat": "Maximum", "yAxis": "right"}]]),
        ("Jobs", app("JobStepsDone", "JobsFailed", "SegmentsRefreshed", "ClientsRescored")),
        ("Inbound mail", app("InboundMatched", "InboundUnmatched", "InboundRejected")),
        ("Node webhooks", app("WebhookProcessed", "WebhookDuplicate", "WebhookHeld")),
        ("Emails", app("EmailsSent", "EmailsFailed")),
        ("Dead letters waiting", [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName",
                                   f"${{{queue}.QueueName}}", {"stat": "Maximum"}]
                                  for queue in ("JobsDeadLetterQueue", "StreamFailureQueue")]),
        ("DynamoDB calls by route", by_route("DynamoDBCalls", "Sum")),
        ("Consumed capacity by route", by_route("ConsumedCapacity", "Sum")),
        ("Lambda errors", per_function("Errors", "Sum")),
        ("Lambda throttles", per_function("Throttles", "Sum")),
        ("Lambda duration p95 (ms)", per_function("Duration", "p95")),
    ]
    widgets = [{"type": "metric", "x": 12 * (i % 2), "y": 6 * (i // 2), "width": 12, "height": 6,
                "properties": {"title": title, "metrics": metrics, "region": "${AWS::Region}", "stat": "Sum",
                               "period": 300, "view": "timeSeries"}} for i, (title, metrics) in enumerate(graphs)]
    return {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
        "DashboardName": sub("nexus-client-management-${Stage}"),
        "DashboardBody": sub(json.dumps({"widgets": widgets}))}}


def job_queue() -> dict:
    """The job runner's queue, its dead-letter queue, the worker's trigger on it, and the alarms."""
    return {
        "JobsDeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {
            "MessageRetentionPeriod": DEAD_LETTER_DAYS * 24 * 3600, "SqsManagedSseEnabled": True}},
        "JobsQueue": {"Type": "AWS::SQS::Queue", "Properties": {
            "VisibilityTimeout": JOBS_VISIBILITY_TIMEOUT, "MessageRetentionPeriod": 4 * 24 * 3600,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]},
                              "maxReceiveCount": JOBS_MAX_RECEIVES}}},
        "RunJobs": {"Properties": {"Events": {"RunJobsSqsEventSource": {"Properties": {
            "BatchSize": 1, "ScalingConfig": {"MaximumConcurrency": JOBS_MAX_CONCURRENCY}}}}}},
        "AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {
            "DisplayName": {"Fn::Sub": "nexus-client-management ${Stage} alarms"}}},
        "JobsDeadLetterAlarm": dead_letter_alarm("JobsDeadLetterQueue", "A job step failed 5 times"),
        "StreamFailureAlarm": dead_letter_alarm("StreamFailureQueue", "A stream record failed for good"),
    }


def merge_template(stage: str) -> dict:
    """What `chalice package --merge-template` adds to (and overrides in) the generated template."""
    parameters = {
        "Stage": {"Type": "String", "Default": stage, "AllowedValues": ["dev", "prod"]},
        "InboundDomain": {"Type": "String", "Description": "domain whose mail SES receives (inbound addresses)",
                          "Default": f"in-{stage}.nexusrms.io"},
        "SenderDomain": {"Type": "String", "Description": "verified SES domain of the sending addresses",
                         "Default": "nexusrms.io"},
        "PortalUrl": {"Type": "String", "Default": "https://portal.nexusrms.io/invitations/accept"},
        "CorsAllowOrigins": {"Type": "String", "Default": CORS_ORIGINS[stage], "MinLength": 1,
                             "Description": "comma list of the origins whose pages may call the API, or *"},
        # Shared with the Node platform, so not generated here: the operator stores it (see README).
        "NodeWebhookSecretName": {"Type": "String", "Default": f"nexusrms/{stage}/node-webhook-secret",
                                  "Description": "name or ARN of the Secrets Manager secret holding the Standard "
                                                 "Webhooks secret (whsec_...) that Node signs its webhooks with"},
    }
    resources: dict[str, Any] = {
        "ClientTable": table(),
        # CSV exports too large for an answer are written under exports/ and linked for a short while: kept a day.
        # An import's raw file (imports/) is read by its job's steps: kept as long as the jobs' dead-letter queue
        # keeps a failed step for a replay, then removed (it holds the tenant's client list).
        "AttachmentsBucket": bucket("nexus-client-management-attachments-${Stage}-${AWS::AccountId}",
                                    LifecycleConfiguration={"Rules": [
                                        {"Id": "ExpireExports", "Status": "Enabled", "Prefix": "exports/",
                                         "ExpirationInDays": 1},
                                        {"Id": "ExpireImportFiles", "Status": "Enabled", "Prefix": "imports/",
                                         "ExpirationInDays": DEAD_LETTER_DAYS}]}),
        "InboundEmailBucket": {**bucket(
            INBOUND_BUCKET,
            NotificationConfiguration={"LambdaConfigurations": [{
                "Event": "s3:ObjectCreated:*", "Function": {"Fn::GetAtt": ["OnInboundEmail", "Arn"]},
                "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "inbound/"}]}}}]}),
            "DependsOn": ["InboundEmailInvokePermission"]},
        "InboundEmailInvokePermission": {"Type": "AWS::Lambda::Permission", "Properties": {
            "FunctionName": {"Ref": "OnInboundEmail"}, "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
            "SourceAccount": {"Ref": "AWS::AccountId"},
            "SourceArn": sub(f"arn:${{AWS::Partition}}:s3:::{INBOUND_BUCKET}")}},
        "InboundEmailBucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {
            "Bucket": {"Ref": "InboundEmailBucket"},
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "SesStoresInboundMail", "Effect": "Allow", "Principal": {"Service": "ses.amazonaws.com"},
                "Action": "s3:PutObject", "Resource": sub("${InboundEmailBucket.Arn}/inbound/*"),
                "Condition": {"StringEquals": {"AWS:SourceAccount": {"Ref": "AWS::AccountId"}}}}]}}},
        "InboundRuleSet": {"Type": "AWS::SES::ReceiptRuleSet",
                           "Properties": {"RuleSetName": sub("nexus-client-management-${Stage}")}},
        "InboundRule": {"Type": "AWS::SES::ReceiptRule", "DependsOn": ["InboundEmailBucketPolicy"], "Properties": {
            "RuleSetName": {"Ref": "InboundRuleSet"},
            "Rule": {"Name": sub("store-inbound-${Stage}"), "Enabled": True, "ScanEnabled": True,
                     "Recipients": [{"Ref": "InboundDomain"}],
                     "Actions": [{"S3Action": {"BucketName": {"Ref": "InboundEmailBucket"},
                                               "ObjectKeyPrefix": "inbound/"}}]}}},
        "SenderIdentity": {"Type": "AWS::SES::EmailIdentity", "Properties": {"EmailIdentity": {"Ref": "SenderDomain"}}},
        "StaffUserPool": {"Type": "AWS::Cognito::UserPool", "Properties": {
            "UserPoolName": sub("nexus-client-management-staff-${Stage}"),
            "Schema": [{"Name": "tenant_id", "AttributeDataType": "String", "Mutable": False}],
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True}}},
        "StaffUserPoolClient": {"Type": "AWS::Cognito::UserPoolClient", "Properties": {
            "UserPoolId": {"Ref": "StaffUserPool"}, "ClientName": "spa", "GenerateSecret": False,
            "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]}},
        # Other NexusRMS modules: the client-credentials grant of their own app client, for the integration scope.
        "StaffUserPoolDomain": {"Type": "AWS::Cognito::UserPoolDomain", "Properties": {
            "UserPoolId": {"Ref": "StaffUserPool"},
            "Domain": sub("nexus-client-management-${Stage}-${AWS::AccountId}")}},
        "IntegrationResourceServer": {"Type": "AWS::Cognito::UserPoolResourceServer", "Properties": {
            "UserPoolId": {"Ref": "StaffUserPool"}, "Identifier": RESOURCE_SERVER, "Name": "Client Management API",
            "Scopes": [{"ScopeName": "integration", "ScopeDescription": "push facts to /v1/integrations"}]}},
        "IntegrationUserPoolClient": {"Type": "AWS::Cognito::UserPoolClient",
                                      "DependsOn": ["IntegrationResourceServer"], "Properties": {
            "UserPoolId": {"Ref": "StaffUserPool"}, "ClientName": "nexusrms-modules", "GenerateSecret": True,
            "AllowedOAuthFlowsUserPoolClient": True, "AllowedOAuthFlows": ["client_credentials"],
            "AllowedOAuthScopes": [f"{RESOURCE_SERVER}/integration"], "AccessTokenValidity": 60,
            "TokenValidityUnits": {"AccessToken": "minutes"}}},
        "CursorSecret": generated_secret("cursor-secret"),
        "PortalTokenSecret": generated_secret("portal-token-secret"),
        **gateway_responses(),
        # Records the stream function gives up on (after bisecting down to the failing one) are kept for 14 days.
        "StreamFailureQueue": {"Type": "AWS::SQS::Queue", "Properties": {
            "MessageRetentionPeriod": DEAD_LETTER_DAYS * 24 * 3600, "SqsManagedSseEnabled": True}},
        "OnTableStream": {"Properties": {"Events": {"OnTableStreamDynamodbEventSource": {"Properties": {
            "Stream": {"Fn::GetAtt": ["ClientTable", "StreamArn"]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "MaximumRetryAttempts": 10, "BisectBatchOnFunctionError": True,
            "MaximumRecordAgeInSeconds": 6 * 3600, "FilterCriteria": stream_filter(),
            "DestinationConfig": {"OnFailure": {"Type": "SQS",
                                                "Destination": {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}}}}}}}},
    }
    resources.update(job_queue())
    resources.update(alarms(stage))
    resources["Dashboard"] = dashboard(stage)
    resources["RestAPI"] = {"Properties": {"TracingEnabled": True}}  # the functions trace by "xray" in config.json
    version = build_version()
    for function, role in FUNCTIONS.items():
        resources.setdefault(function, {}).setdefault("Properties", {})["Environment"] = environment(function, version)
        resources[role] = {"Properties": {"Policies": policies(function)}}
        resources[f"{function}LogGroup"] = {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": sub(f"/aws/lambda/${{{function}}}"), "RetentionInDays": LOG_RETENTION_DAYS[stage]}}
    return {"Parameters": parameters, "Conditions": {"AnyOrigin": {"Fn::Equals": [{"Ref": "CorsAllowOrigins"}, "*"]}},
            "Resources": resources,
            "Outputs": {"TableName": {"Value": {"Ref": "ClientTable"}},
                        "StaffUserPoolId": {"Value": {"Ref": "StaffUserPool"}},
                        "StaffUserPoolClientId": {"Value": {"Ref": "StaffUserPoolClient"}},
                        "IntegrationClientId": {"Value": {"Ref": "IntegrationUserPoolClient"}},
                        "TokenEndpoint": {"Value": sub("https://${StaffUserPoolDomain}.auth.${AWS::Region}"
                                                       ".amazoncognito.com/oauth2/token")},
                        "StreamFailureQueueUrl": {"Value": {"Ref": "StreamFailureQueue"}},
                        "JobsQueueUrl": {"Value": {"Ref": "JobsQueue"}},
                        "JobsDeadLetterQueueUrl": {"Value": {"Ref": "JobsDeadLetterQueue"}},
                        "AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}},
                        "DashboardName": {"Value": {"Ref": "Dashboard"}},
                        "InboundEmailBucketName": {"Value": {"Ref": "InboundEmailBucket"}}}}


def add_cognito_authorizer(template: dict) -> None:
    """Staff routes also pass API Gateway's Cognito authorizer (it takes the SPA's ID tokens). Integration routes
    are called with the modules' access tokens and by admins with ID tokens, and an authorizer takes one kind or
    the other, never both: the app alone verifies them (signature, issuer, expiry, audience), as it verifies every
    token, locally too. Portal, webhook and service routes carry their own credentials; CORS preflights none."""
    import app  # noqa: F401 - registers every route
    from chalicelib.handlers.routing import ROUTES

    guarded = {(r.path, r.method.lower()) for r in ROUTES if r.need not in ("public", "portal", "integration")}
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    body.setdefault("securityDefinitions", {})["staff"] = {
        "type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authtype": "cognito_user_pools",
        "x-amazon-apigateway-authorizer": {"type": "cognito_user_pools",
                                           "providerARNs": [{"Fn::GetAtt": ["StaffUserPool", "Arn"]}]}}
    for path, methods in body["paths"].items():
        for method, operation in methods.items():
            if (path, method) in guarded:
                operation["security"] = [{"staff": []}]


def add_function_timeouts(template: dict) -> None:
    """FUNCTION_TIMEOUT: each function's own timeout (lambda_timeout in .chalice/config.json, as packaged), which
    the database retry budget and idempotency leases stay inside."""
    for function in FUNCTIONS:
        props = template["Resources"][function]["Properties"]
        props["Environment"]["Variables"]["FUNCTION_TIMEOUT"] = str(props["Timeout"])


def point_jobs_trigger(template: dict) -> None:
    """Chalice names the worker's queue by JOBS_QUEUE_NAME (an ARN it builds); the trigger is this stack's queue."""
    trigger = template["Resources"]["RunJobs"]["Properties"]["Events"]["RunJobsSqsEventSource"]["Properties"]
    trigger["Queue"] = {"Fn::GetAtt": ["JobsQueue", "Arn"]}


def shrink(zip_path: Path) -> None:
    """Drop what the Lambda runtime provides (botocore alone is 16 MB compressed) and the local-only runtime, and
    ship every module compiled: `/var/task` is read-only, so without the `.pyc` files each cold start compiles the
    app and its libraries (~340 ms measured). Unchecked-hash `.pyc` files are used as they are, never re-validated
    against a source time stamp; the build's Python is the runtime's (Chalice takes one from the other)."""
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp)
        with zipfile.ZipFile(zip_path) as src:
            for info in src.infolist():
                top = info.filename.split("/")[0]
                if top.split("-")[0] in RUNTIME_PROVIDED or top in RUNTIME_PROVIDED \
                        or info.filename.startswith(UNUSED) or "__pycache__/" in info.filename:
                    continue
                src.extract(info, staged)
        unchecked = py_compile.PycInvalidationMode.UNCHECKED_HASH
        compileall.compile_dir(staged, quiet=2, workers=0, invalidation_mode=unchecked)
        kept = zip_path.with_suffix(".tmp")
        with zipfile.ZipFile(kept, "w", zipfile.ZIP_DEFLATED) as dst:
            for path in sorted(staged.rglob("*")):
                if path.is_file():
                    dst.write(path, path.relative_to(staged).as_posix())
        kept.replace(zip_path)


def package(stage: str, out: Path) -> Path:
    """Build the stage's template and zip into `out`; answers the template's path."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        merge = Path(tmp) / "merge.json"
        merge.write_text(json.dumps(merge_template(stage), indent=1))
        env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "eu-west-1")}
        chalice = str(Path(sys.executable).parent / "chalice")
        subprocess.run([chalice, "package", "--stage", stage, "--merge-template", str(merge), str(out)],
                       cwd=ROOT, env=env, check=True)
    template_path = out / "sam.json"
    template = json.loads(template_path.read_text())
    add_cognito_authorizer(template)
    add_function_timeouts(template)
    point_jobs_trigger(template)
    template_path.write_text(json.dumps(template, indent=1))
    shrink(out / "deployment.zip")
    return template_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev", choices=["dev", "prod"])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    path = package(args.stage, Path(args.out or ROOT / "build" / args.stage))
    print(f"{path} and {path.parent / 'deployment.zip'} "
          f"({(path.parent / 'deployment.zip').stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
