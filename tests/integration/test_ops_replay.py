"""`python -m chalicelib.ops replay` in AWS mode: Lambda's OnFailure messages (moto SQS) name batches of the table's
real stream (DynamoDB Local); their records are read back and applied, or kept when the stream no longer has them."""
from __future__ import annotations

import json
import os
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.domain import client_cases
from chalicelib.domain.scoring import LEAD
from chalicelib.ops.__main__ import main
from chalicelib.tables.stores import Stores
from tests.ddb_local import ddb_client

pytestmark = pytest.mark.ddb


@pytest.fixture
def failure_queue(ddb_table, monkeypatch):
    """The stream mapping's OnFailure queue on moto (DynamoDB calls still reach DynamoDB Local), its URL set as the
    deployed stack's output is."""
    with mock_aws(), mock.patch.dict(os.environ):
        from chalicelib import aws

        sqs = aws.client("sqs", region_name="eu-west-1")
        url = sqs.create_queue(QueueName="stream-failures")["QueueUrl"]
        monkeypatch.setenv("STREAM_FAILURE_QUEUE_URL", url)
        yield sqs, url


@pytest.fixture
def ops(capsys):
    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(list(argv))
        return code, capsys.readouterr().out

    return run


def stream_position(ddb_table: str, ddb_endpoint: str, client_id: str) -> tuple[str, str, str]:
    """(stream ARN, shard id, sequence number) of the INSERT of a client's item, read from the table's stream."""
    arn = ddb_client(ddb_endpoint).describe_table(TableName=ddb_table)["Table"]["LatestStreamArn"]
    streams = ddb_client(ddb_endpoint, "dynamodbstreams")
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for record in streams.get_records(ShardIterator=iterator)["Records"]:
            image = record["dynamodb"].get("NewImage", {})
            if image.get("kind", {}).get("S") == "client" and image.get("id", {}).get("S") == client_id:
                return arn, shard["ShardId"], record["dynamodb"]["SequenceNumber"]
    raise AssertionError(f"no INSERT of client {client_id} in the stream")


def failed_batch(arn: str, shard_id: str, start: str, end: str | None = None) -> str:
    """The message Lambda sends to the OnFailure destination of a DynamoDB stream mapping."""
    return json.dumps({
        "requestContext": {"requestId": "4c1e0e38-2e5b-4b7e-9a61-0d3c5d1e1a11", "condition": "RetryAttemptsExhausted",
                           "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:on_table_stream",
                           "approximateInvokeCount": 11},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0", "timestamp": "2026-06-05T18:22:26.479Z",
        "DDBStreamBatchInfo": {"shardId": shard_id, "startSequenceNumber": start, "endSequenceNumber": end or start,
                               "approximateArrivalOfFirstRecord": "2026-06-05T18:21:49Z",
                               "approximateArrivalOfLastRecord": "2026-06-05T18:21:49Z", "batchSize": 1,
                               "streamArn": arn}})


def messages_left(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def scored(client_id: str) -> bool:
    return Stores("t").facts.score(client_id, LEAD) is not None


def test_a_failed_batch_is_read_back_from_the_stream_applied_and_its_message_deleted(
        failure_queue, ops, ddb_table, ddb_endpoint):
    sqs, url = failure_queue
    client = client_cases.create_client(Stores("t"), {"name": "Acme"})
    arn, shard, seq = stream_position(ddb_table, ddb_endpoint, client.id)
    sqs.send_message(QueueUrl=url, MessageBody=failed_batch(arn, shard, seq))
    assert not scored(client.id)  # the stream function never got to it

    code, out = ops("replay")

    assert code == 0, out
    assert scored(client.id)  # its rescore effect ran
    assert messages_left(sqs, url) == 0
    assert f"applied shard {shard} records {seq}: 1 record; message deleted" in out
    assert ops("replay") == (0, f"nothing to replay in {url}\n")


def test_a_batch_of_several_records_is_read_up_to_its_last_sequence_number(
        failure_queue, ops, ddb_table, ddb_endpoint):
    sqs, url = failure_queue
    first, second, later = (client_cases.create_client(Stores("t"), {"name": n}) for n in ("Acme", "Bolt", "Cirrus"))
    arn, shard, start = stream_position(ddb_table, ddb_endpoint, first.id)
    _, _, end = stream_position(ddb_table, ddb_endpoint, second.id)
    sqs.send_message(QueueUrl=url, MessageBody=failed_batch(arn, shard, start, end))

    code, out = ops("replay")

    assert code == 0, out
    assert scored(first.id) and scored(second.id)
    assert not scored(later.id)  # after the batch's last record: not the batch's
    assert messages_left(sqs, url) == 0


def trimmed_on(shard: str):
    def trimmed(params, **kwargs):
        if params.get("ShardId") == shard:
            raise ClientError({"Error": {"Code": "TrimmedDataAccessException", "Message": "beyond the trim horizon"}},
                              "GetShardIterator")
    return trimmed


def test_a_message_whose_records_are_gone_is_kept_and_the_command_explains_the_rebuild(
        failure_queue, ops, ddb_table, ddb_endpoint, monkeypatch):
    from chalicelib import aws

    sqs, url = failure_queue
    client = client_cases.create_client(Stores("t"), {"name": "Acme"})
    arn, shard, seq = stream_position(ddb_table, ddb_endpoint, client.id)
    sqs.send_message(QueueUrl=url, MessageBody=failed_batch(arn, shard, seq))
    gone_shard = "shardId-00000001700000000000-0badc0de"  # a shard the stream no longer has
    sqs.send_message(QueueUrl=url, MessageBody=failed_batch(arn, gone_shard, seq))
    real_client = aws.client

    def past_retention(service, **kwargs):  # the stream trimmed the records: older than 24 h
        made = real_client(service, **kwargs)
        if service == "dynamodbstreams":
            made.meta.events.register("provide-client-params.dynamodbstreams.GetShardIterator", trimmed_on(shard))
        return made

    with monkeypatch.context() as older:
        older.setattr(aws, "client", past_retention)
        code, out = ops("replay")

    assert code == 1
    assert not scored(client.id)
    assert out.count("kept shard") == 2 and "past the stream's 24 h retention" in out
    assert "TrimmedDataAccessException" in out and "ResourceNotFoundException" in out
    assert "recount --all" in out and "segments --all" in out and "rescore --all" in out
    visible = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert len(visible) == 2  # visible again at once, for the next try

    code, out = ops("replay", "--drop-expired")  # once recount, segments and rescore have rebuilt it
    assert code == 0, out
    assert "kept shard" not in out
    assert f"dropped shard {gone_shard}" in out
    assert f"applied shard {shard}" in out and scored(client.id)  # no longer trimmed: read and applied
    assert messages_left(sqs, url) == 0


def test_a_batch_whose_record_fails_again_keeps_its_message(failure_queue, ops, ddb_table, ddb_endpoint,
                                                            monkeypatch):
    from chalicelib.handlers.stream import EFFECTS

    sqs, url = failure_queue
    client = client_cases.create_client(Stores("t"), {"name": "Acme"})
    arn, shard, seq = stream_position(ddb_table, ddb_endpoint, client.id)
    sqs.send_message(QueueUrl=url, MessageBody=failed_batch(arn, shard, seq))

    def still_broken(stores, client_id):
        raise RuntimeError("the bug is not fixed yet")

    monkeypatch.setitem(EFFECTS, "rescore", still_broken)
    code, out = ops("replay")

    assert code == 1
    assert f"kept shard {shard} records {seq}: 1 of 1 record failed again" in out
    assert messages_left(sqs, url) == 1
