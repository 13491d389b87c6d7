"""GetRecords records of a DynamoDB stream as the JSON records Lambda hands a stream function."""
from __future__ import annotations

import base64
import datetime as dt
from typing import Any


def _lambda_value(value: dict[str, Any]) -> dict[str, Any]:
    # boto3 decodes binary attributes to bytes; Lambda hands them over base64-encoded in JSON.
    (kind, inner), = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(b).decode() for b in inner]}
    if kind == "M":
        return {"M": {k: _lambda_value(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_lambda_value(v) for v in inner]}
    return value


def to_lambda_record(raw: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """One GetRecords record → the JSON record Lambda passes (every key chalice's DynamoDBRecord reads)."""
    ddb = dict(raw["dynamodb"])
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, dt.datetime):
        ddb["ApproximateCreationDateTime"] = int(created.timestamp())
    for image in ("Keys", "NewImage", "OldImage"):
        if image in ddb:
            ddb[image] = {k: _lambda_value(v) for k, v in ddb[image].items()}
    record = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in raw:  # TTL deletions carry it
        record["userIdentity"] = raw["userIdentity"]
    return record
