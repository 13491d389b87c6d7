"""Stream batches Lambda gave up on, as its OnFailure SQS queue describes them: read from the stream again, applied."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.ops.stream_records import to_lambda_record

PAGE = 1000                 # records per GetRecords (its maximum)
MAX_EMPTY_PAGES = 5         # empty pages in a row before the shard counts as holding no more of the batch
EMPTY_PAUSE = 0.2           # seconds between empty pages (a shard serves 5 GetRecords a second)
MAX_EXPIRED = 3             # fresh iterators asked for after ExpiredIteratorException, per batch
HANDLER_BATCH = 100         # records per handler call: the stream mapping's batch size
VISIBILITY = 300            # seconds a received message stays hidden while this command works on it
GONE_CODES = ("TrimmedDataAccessException", "ResourceNotFoundException")


class RecordsGone(Exception):
    """The batch's records are no longer in the stream: past its 24 h retention, or the stream was replaced."""


@dataclass(frozen=True)
class FailedBatch:
    """Where a failed batch lies in the stream, from Lambda's OnFailure message."""

    shard_id: str
    start: str
    end: str
    stream_arn: str
    size: int | None = None
    first_arrival: str | None = None

    @classmethod
    def from_message(cls, body: str) -> FailedBatch:
        """The batch a message describes; ValueError when it is not Lambda's description of a stream batch."""
        try:
            info = json.loads(body)["DDBStreamBatchInfo"]
            return cls(shard_id=info["shardId"], start=info["startSequenceNumber"], end=info["endSequenceNumber"],
                       stream_arn=info["streamArn"], size=info.get("batchSize"),
                       first_arrival=info.get("approximateArrivalOfFirstRecord"))
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not a DynamoDB stream batch description ({type(exc).__name__}: {exc})") from None

    @property
    def region(self) -> str:
        parts = self.stream_arn.split(":")
        return parts[3] if len(parts) > 3 else ""

    def __str__(self) -> str:
        span = self.start if self.start == self.end else f"{self.start}..{self.end}"
        return f"shard {self.shard_id} records {span}"


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _gone(exc: ClientError, batch: FailedBatch) -> Exception:
    if _code(exc) in GONE_CODES:
        message = exc.response.get("Error", {}).get("Message", "")
        return RecordsGone(f"{_code(exc)}: {message}" if message else _code(exc))
    return exc


def read_batch(streams: Any, batch: FailedBatch) -> list[dict[str, Any]]:
    """The batch's records as GetRecords answers them, from its first sequence number through its last.

    Lambda's message holds no record, only where the batch lies in the stream (`DDBStreamBatchInfo`), so they are
    read back (AT_SEQUENCE_NUMBER, then pages up to the last one), which works while the stream holds them (24 h).
    Raises RecordsGone when it no longer does (trimmed, or the shard or the stream is gone).
    """
    end = int(batch.end)
    where = {"StreamArn": batch.stream_arn, "ShardId": batch.shard_id}

    def iterator(after: str | None) -> str:
        kind = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after} if after else \
            {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": batch.start}
        try:
            return streams.get_shard_iterator(**where, **kind)["ShardIterator"]
        except ClientError as exc:
            raise _gone(exc, batch) from exc

    records: list[dict[str, Any]] = []
    position: str | None = iterator(None)
    empty = expired = 0
    while position is not None:
        try:
            answer = streams.get_records(ShardIterator=position, Limit=PAGE)
        except ClientError as exc:
            if _code(exc) == "ExpiredIteratorException" and expired < MAX_EXPIRED:
                expired += 1  # an iterator lives 15 minutes: ask again from the last record read
                position = iterator(records[-1]["dynamodb"]["SequenceNumber"] if records else None)
                continue
            raise _gone(exc, batch) from exc
        for raw in answer.get("Records", []):
            if int(raw["dynamodb"]["SequenceNumber"]) > end:
                return records
            records.append(raw)
        if records and int(records[-1]["dynamodb"]["SequenceNumber"]) == end:
            return records
        empty = 0 if answer.get("Records") else empty + 1
        if empty >= MAX_EMPTY_PAGES:
            break
        if empty:
            time.sleep(EMPTY_PAUSE)
        position = answer.get("NextShardIterator")  # None: a closed shard read to its end
    if not records:
        raise RecordsGone("the stream holds none of them")
    return records


Apply = Callable[[list[dict[str, Any]]], list[str]]  # Lambda-shaped records -> sequence numbers that failed


@dataclass
class Outcome:
    """One message of the queue, replayed or not."""

    batch: FailedBatch | None
    records: int = 0
    failed: list[str] = field(default_factory=list)
    gone: str | None = None      # why the records cannot be read any more
    error: str | None = None     # why the message could not be replayed (kept)
    deleted: bool = False


def replay_message(streams: Any, body: str, apply: Apply) -> Outcome:
    """Read the batch a message describes and apply its records, HANDLER_BATCH at a time (deletes nothing)."""
    try:
        batch = FailedBatch.from_message(body)
    except ValueError as exc:
        return Outcome(None, error=str(exc))
    try:
        raws = read_batch(streams, batch)
    except RecordsGone as exc:
        return Outcome(batch, gone=str(exc))
    except ClientError as exc:
        return Outcome(batch, error=f"{_code(exc)}: {exc}")
    records = [to_lambda_record(raw, batch.stream_arn, batch.region) for raw in raws]
    outcome = Outcome(batch, records=len(records))
    for start in range(0, len(records), HANDLER_BATCH):
        outcome.failed += apply(records[start:start + HANDLER_BATCH])
    return outcome


def replay_queue(sqs: Any, streams: Any, queue_url: str, apply: Apply, *, report: Callable[[Outcome], None],
                 drop_gone: bool = False) -> list[Outcome]:
    """Every message of the OnFailure queue once: applied and deleted when no record failed, else kept (visible
    again at the end, for the next try). With `drop_gone`, a message whose records are gone is deleted too (once
    recount, segments and rescore have rebuilt what they would have done)."""
    outcomes: list[Outcome] = []
    kept: list[str] = []
    seen: set[str] = set()
    try:
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           VisibilityTimeout=VISIBILITY).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            kept += [m["ReceiptHandle"] for m in messages if m["MessageId"] in seen]  # back early: show it again
            if not fresh:
                break
            for message in fresh:
                seen.add(message["MessageId"])
                outcome = replay_message(streams, message["Body"], apply)
                done = not outcome.failed and outcome.error is None and (outcome.gone is None or drop_gone)
                if done:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    outcome.deleted = True
                else:
                    kept.append(message["ReceiptHandle"])
                outcomes.append(outcome)
                report(outcome)
    finally:
        for receipt in kept:  # visible again now, not only after VISIBILITY
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
    return outcomes
