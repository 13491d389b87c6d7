"""`make package STAGE=...`: `chalice package` merged with the resources Chalice does not create, least privilege.

Writes build/<stage>/sam.json (a SAM template) and build/<stage>/deployment.zip. Needs no AWS account: only
AWS_DEFAULT_REGION. The table is described from the PynamoDB models, so its keys and indexes have one source.
"""
from __future__ import annotations

import argparse
import json
import os
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
    "RecalculateScores": "RecalculateScoresRole", "OnInboundEmail": "OnInboundEmailRole",
}
# The Lambda Python runtime ships these; leaving them out keeps the package small and the runtime's copy current.
# Named, not referenced: the bucket's notification needs the function, so the function may not need the bucket.
INBOUND_BUCKET = "nexus-client-management-inbound-${Stage}-${AWS::AccountId}"
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")


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
    logs = statement("Logs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                     [sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/*")])
    items = statement("TableItems", TABLE_ITEMS, table_arns)
    send = statement("SendMail", ["ses:SendRawEmail"],
                     [sub("arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderDomain}")])
    attachments = statement("Attachments", ["s3:GetObject", "s3:PutObject"], [sub("${AttachmentsBucket.Arn}/*")])
    per_function = {
        "APIHandler": [items, statement("TableHealth", ["dynamodb:DescribeTable"], table_arns[:1]), send,
                       attachments],
        "OnTableStream": [items, statement("TableStream", ["dynamodb:DescribeStream", "dynamodb:GetRecords",
                                                           "dynamodb:GetShardIterator", "dynamodb:ListStreams"],
                                           [{"Fn::GetAtt": ["ClientTable", "StreamArn"]}])],
        "RefreshSegments": [items],
        "RecalculateScores": [items],
        "OnInboundEmail": [items, statement("InboundMail", ["s3:GetObject"],
                                                     [sub(f"arn:${{AWS::Partition}}:s3:::{INBOUND_BUCKET}/inbound/*")]),
                           attachments],
    }[function]
    return [{"PolicyName": f"{function}Policy",
             "PolicyDocument": {"Version": "2012-10-17", "Statement": [logs, *per_function]}}]


def environment() -> dict:
    """Every function's variables: the resources of this stack and the secrets given as parameters."""
    issuer = sub("https://cognito-idp.${AWS::Region}.amazonaws.com/${StaffUserPool}")
    return {"Variables": {
        "TABLE_NAME": {"Ref": "ClientTable"}, "INBOUND_EMAIL_BUCKET": sub(INBOUND_BUCKET),
        "ATTACHMENTS_BUCKET": {"Ref": "AttachmentsBucket"}, "EMAIL_SENDER": "ses",
        "AUTH_ISSUER": issuer, "AUTH_JWKS_URL": {"Fn::Sub": ["${Issuer}/.well-known/jwks.json", {"Issuer": issuer}]},
        "PORTAL_TOKEN_SECRET": {"Ref": "PortalTokenSecret"}, "NODE_WEBHOOK_SECRET": {"Ref": "NodeWebhookSecret"},
        "PORTAL_URL": {"Ref": "PortalUrl"}}}


def envelope(status: str, code: str, message: str) -> dict:
    body = json.dumps({"error": {"code": code, "message": message, "details": []}})
    return {"StatusCode": status, "ResponseTemplates": {"application/json": body},
            "ResponseParameters": {"gatewayresponse.header.Content-Type": "'application/json; charset=utf-8'"}}


def gateway_response(kind: str, status: str, code: str, message: str) -> dict:
    """API Gateway's own answers (unknown path, rejected token) in the contract's error envelope."""
    return {"Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": {"RestApiId": {"Ref": "RestAPI"}, "ResponseType": kind, **envelope(status, code, message)}}


def merge_template(stage: str) -> dict:
    """What `chalice package --merge-template` adds to (and overrides in) the generated template."""
    parameters = {
        "Stage": {"Type": "String", "Default": stage, "AllowedValues": ["dev", "prod"]},
        "InboundDomain": {"Type": "String", "Description": "domain whose mail SES receives (inbound addresses)",
                          "Default": f"in-{stage}.nexusrms.io"},
        "SenderDomain": {"Type": "String", "Description": "verified SES domain of the sending addresses",
                         "Default": "nexusrms.io"},
        "PortalUrl": {"Type": "String", "Default": "https://portal.nexusrms.io/invitations/accept"},
        "PortalTokenSecret": {"Type": "String", "NoEcho": True, "MinLength": 32},
        "NodeWebhookSecret": {"Type": "String", "NoEcho": True, "MinLength": 16},
    }
    resources: dict[str, Any] = {
        "ClientTable": table(),
        "AttachmentsBucket": bucket("nexus-client-management-attachments-${Stage}-${AWS::AccountId}"),
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
        "MissingRoute": gateway_response("MISSING_AUTHENTICATION_TOKEN", "404", "not_found", "no such route"),
        "Unauthorized": gateway_response("UNAUTHORIZED", "401", "unauthorized", "a valid bearer token is required"),
        "AccessDenied": gateway_response("ACCESS_DENIED", "403", "forbidden", "the token may not call this route"),
        "OnTableStream": {"Properties": {"Events": {"OnTableStreamDynamodbEventSource": {"Properties": {
            "Stream": {"Fn::GetAtt": ["ClientTable", "StreamArn"]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "MaximumRetryAttempts": 10, "BisectBatchOnFunctionError": True}}}}},
    }
    for function, role in FUNCTIONS.items():
        resources.setdefault(function, {}).setdefault("Properties", {})["Environment"] = environment()
        resources[role] = {"Properties": {"Policies": policies(function)}}
    return {"Parameters": parameters, "Resources": resources,
            "Outputs": {"TableName": {"Value": {"Ref": "ClientTable"}},
                        "StaffUserPoolId": {"Value": {"Ref": "StaffUserPool"}},
                        "StaffUserPoolClientId": {"Value": {"Ref": "StaffUserPoolClient"}},
                        "InboundEmailBucketName": {"Value": {"Ref": "InboundEmailBucket"}}}}


def add_cognito_authorizer(template: dict) -> None:
    """Staff and integration routes also pass API Gateway's Cognito authorizer; portal, webhook and service
    routes carry their own credentials. The app verifies every token again (as the local run does)."""
    import app  # noqa: F401 - registers every route
    from chalicelib.handlers.routing import ROUTES

    guarded = {(r.path, r.method.lower()) for r in ROUTES if r.need not in ("public", "portal")}
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    body.setdefault("securityDefinitions", {})["staff"] = {
        "type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authtype": "cognito_user_pools",
        "x-amazon-apigateway-authorizer": {"type": "cognito_user_pools",
                                           "providerARNs": [{"Fn::GetAtt": ["StaffUserPool", "Arn"]}]}}
    for path, methods in body["paths"].items():
        for method, operation in methods.items():
            if (path, method) in guarded:
                operation["security"] = [{"staff": []}]


def shrink(zip_path: Path) -> None:
    """Drop what the Lambda runtime provides (botocore alone is 16 MB compressed) and the local-only runtime."""
    kept = zip_path.with_suffix(".tmp")
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(kept, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            top = info.filename.split("/")[0]
            if top.split("-")[0] in RUNTIME_PROVIDED or top in RUNTIME_PROVIDED \
                    or info.filename.startswith("chalicelib/local/"):
                continue
            dst.writestr(info, src.read(info.filename))
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
