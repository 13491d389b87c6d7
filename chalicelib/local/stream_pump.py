"""Delivers the table's stream from DynamoDB Local to a Lambda-style handler, as Lambda's event source mapping does."""
from __future__ import annotations

import base64
import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.local.checkpoints import CheckpointStore
from chalicelib.local.lambda_runtime import Handler, lambda_context
from chalicelib.local.polling import Poller

log = logging.getLogger("nexus.local.stream")


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


def _seq(record: dict[str, Any]) -> str:
    return record["dynamodb"]["SequenceNumber"]


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    seq: str | None = None          # last sequence number handed over (or given up on)
    done: bool = False              # closed and fully delivered
    iterator: str | None = None
    closed: bool = False            # the stream returned no next iterator
    from_horizon: bool = False      # the checkpoint is unusable; start from the oldest record
    pending: list[dict[str, Any]] = field(default_factory=list)


class StreamPump(Poller):
    """Polls every shard of the table's latest stream and hands batches to `handler` (at least once, in order)."""

    def __init__(self, handler: Handler, *, table_name: str, endpoint_url: str, region: str,
                 checkpoint_path: str | os.PathLike, consumer: str = "on_table_stream", batch_size: int = 100,
                 poll_interval: float = 0.5, max_retries: int = 3, retry_delay: float = 1.0) -> None:
        self.handler = handler
        self.table_name = table_name
        self.region = region
        self.consumer = consumer
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.checkpoints = CheckpointStore(checkpoint_path)
        kwargs = dict(endpoint_url=endpoint_url, region_name=region,
                      aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "local",
                      aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "local",
                      config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2}))
        self._ddb = boto3.client("dynamodb", **kwargs)
        self._streams = boto3.client("dynamodbstreams", **kwargs)
        self._arn: str | None = None
        self._shards: dict[str, _Shard] = {}
        self._last_problem: str | None = None
        super().__init__()

    # -- the polling loop (Poller) ---------------------------------------------------------------------------
    @property
    def thread_name(self) -> str:
        return f"stream-pump-{self.consumer}"

    def poll_succeeded(self) -> None:
        self._last_problem = None

    def poll_failed(self, exc: Exception) -> None:
        if isinstance(exc, (BotoCoreError, ClientError)):
            # DynamoDB Local restarting or the table being recreated: say so once, keep polling.
            if str(exc) != self._last_problem:
                log.warning("stream pump %s: %s", self.consumer, exc)
                self._last_problem = str(exc)
        else:
            log.exception("stream pump %s failed a poll", self.consumer, exc_info=exc)

    # -- polling ---------------------------------------------------------------------------------------------
    def poll_once(self) -> int:
        """Fetch and deliver whatever is new on every readable shard; returns the number of records handled."""
        try:
            table = self._ddb.describe_table(TableName=self.table_name)["Table"]
        except ClientError as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                return 0  # the table is not created yet
            raise
        arn = table.get("LatestStreamArn")
        if arn is None:
            return 0
        if arn != self._arn:
            self._arn, self._shards = arn, {}
        self._discover_shards()
        handled = 0
        for shard in list(self._shards.values()):  # describe order puts parents before their children
            if not shard.done and self._parent_done(shard):
                handled += self._drain(shard)
        return handled

    def _discover_shards(self) -> None:
        listed, kwargs = [], {"StreamArn": self._arn}
        while True:
            desc = self._streams.describe_stream(**kwargs)["StreamDescription"]
            listed += desc.get("Shards", [])
            if not desc.get("LastEvaluatedShardId"):
                break
            kwargs["ExclusiveStartShardId"] = desc["LastEvaluatedShardId"]
        known = {s["ShardId"] for s in listed}
        for gone in [sid for sid in self._shards if sid not in known]:
            del self._shards[gone]  # trimmed away by retention
        saved = None
        for s in listed:
            if s["ShardId"] not in self._shards:
                saved = self.checkpoints.shards(self.consumer, self._arn) if saved is None else saved
                mark = saved.get(s["ShardId"], {})
                self._shards[s["ShardId"]] = _Shard(s["ShardId"], s.get("ParentShardId"),
                                                    seq=mark.get("seq"), done=bool(mark.get("done")))

    def _parent_done(self, shard: _Shard) -> bool:
        parent = self._shards.get(shard.parent_id or "")
        return parent is None or parent.done

    def _drain(self, shard: _Shard) -> int:
        handled = 0
        while not self._stop.is_set():
            if not shard.pending and not self._fetch(shard):
                break
            handled += self._deliver(shard)
        return handled

    def _fetch(self, shard: _Shard) -> bool:
        if shard.closed:
            shard.done = True
            self.checkpoints.save(self.consumer, self._arn, shard.shard_id, shard.seq, done=True)
            return False
        if shard.iterator is None:
            shard.iterator = self._iterator(shard)
        try:
            resp = self._streams.get_records(ShardIterator=shard.iterator, Limit=self.batch_size)
        except ClientError as exc:
            code = _error_code(exc)
            shard.iterator = None
            if code == "TrimmedDataAccessException":
                log.warning("stream records after %s were trimmed; reading shard %s from its oldest record",
                            shard.seq, shard.shard_id)
                shard.from_horizon = True
                return False
            if code == "ExpiredIteratorException":
                return False
            raise
        shard.pending = list(resp.get("Records", []))
        shard.iterator = resp.get("NextShardIterator")
        shard.closed = shard.iterator is None
        return bool(shard.pending) or shard.closed

    def _iterator(self, shard: _Shard) -> str:
        kwargs = {"StreamArn": self._arn, "ShardId": shard.shard_id}
        if shard.seq and not shard.from_horizon:
            try:
                return self._streams.get_shard_iterator(ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                                        SequenceNumber=shard.seq, **kwargs)["ShardIterator"]
            except ClientError as exc:
                if _error_code(exc) not in ("TrimmedDataAccessException", "ValidationException"):
                    raise
                log.warning("checkpoint %s of shard %s is unusable (%s); reading from its oldest record",
                            shard.seq, shard.shard_id, _error_code(exc))
        return self._streams.get_shard_iterator(ShardIteratorType="TRIM_HORIZON", **kwargs)["ShardIterator"]

    # -- delivery --------------------------------------------------------------------------------------------
    def _deliver(self, shard: _Shard) -> int:
        if not shard.pending:
            return 0
        batch = shard.pending[:self.batch_size]
        total = len(batch)
        for attempt in range(self.max_retries + 1):
            failed_from = self._invoke(batch)
            if failed_from is None:
                self._ack(shard, batch)
                return total
            # Lambda resumes from the lowest failed sequence number: what precedes it counts as delivered.
            self._ack(shard, batch[:failed_from])
            batch = batch[failed_from:]
            if attempt < self.max_retries and self._stop.wait(self.retry_delay):
                return total - len(batch)  # stopping: the rest stays unacknowledged and comes again next run
        log.error("stream handler %s failed %d times; skipping %d record(s), sequence numbers %s to %s",
                  self.consumer, self.max_retries + 1, len(batch), _seq(batch[0]), _seq(batch[-1]))
        self._ack(shard, batch)
        return total

    def _invoke(self, batch: list[dict[str, Any]]) -> int | None:
        """Call the handler; None when the whole batch succeeded, else the index to retry from."""
        records = [to_lambda_record(r, self._arn, self.region) for r in batch]
        try:
            result = self.handler({"Records": records}, lambda_context(self.consumer))
        except Exception:
            log.exception("stream handler %s raised; the batch of %d will be retried", self.consumer, len(batch))
            return 0
        failures = result.get("batchItemFailures") if isinstance(result, dict) else None
        if not failures:
            return None
        seqs = [_seq(r) for r in batch]
        ids = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
        if any(i not in seqs for i in ids):
            # Lambda treats a malformed or unknown identifier as a failure of the whole batch.
            log.warning("stream handler %s reported unknown itemIdentifier(s) %s; retrying the whole batch",
                        self.consumer, ids)
            return 0
        log.warning("stream handler %s reported %d failed record(s); retrying from %s",
                    self.consumer, len(ids), min(ids, key=seqs.index))
        return min(seqs.index(i) for i in ids)

    def _ack(self, shard: _Shard, acked: list[dict[str, Any]]) -> None:
        if not acked:
            return
        shard.pending = shard.pending[len(acked):]
        shard.seq = _seq(acked[-1])
        self.checkpoints.save(self.consumer, self._arn, shard.shard_id, shard.seq)
