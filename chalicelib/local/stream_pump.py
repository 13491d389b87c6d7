"""Delivers the table's stream from DynamoDB Local to a Lambda-style handler, as Lambda's event source mapping does."""
from __future__ import annotations

import datetime as dt
import logging
import os
import random
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.local.checkpoints import CheckpointStore
from chalicelib.local.dead_letters import DeadLetters
from chalicelib.local.lambda_runtime import Handler, lambda_context
from chalicelib.local.polling import Poller
from chalicelib.ops.stream_records import to_lambda_record

log = logging.getLogger("nexus.local.stream")

# As the template's stream mapping (deploy/package.py; a test keeps them equal): the retries of a failing record,
# and the age after which it is given up on, before it goes to the OnFailure destination.
MAX_RETRY_ATTEMPTS = 10
MAX_RECORD_AGE_S = 6 * 60 * 60


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
    window: int | None = None       # a bisected batch size after a failed invocation; None: batch_size
    failures: int = 0               # failed invocations in a row, for the backoff
    attempts: dict[str, int] = field(default_factory=dict)  # failed attempts per sequence number


class StreamPump(Poller):
    """Polls every shard of the table's latest stream and hands batches to `handler` (at least once, in order).

    A failing batch is retried with backoff until it succeeds, as Lambda does; a batch that raises is bisected
    (BisectBatchOnFunctionError), and a single record still failing after `max_retry_attempts` retries, or older
    than `max_record_age` seconds, is written to the dead-letter folder, and the shard moves on. Nothing is skipped.
    """

    def __init__(self, handler: Handler, *, table_name: str, endpoint_url: str, region: str,
                 checkpoint_path: str | os.PathLike, consumer: str = "on_table_stream", batch_size: int = 100,
                 poll_interval: float = 0.5, max_retry_attempts: int = MAX_RETRY_ATTEMPTS,
                 max_record_age: float | None = MAX_RECORD_AGE_S, retry_delay: float = 1.0,
                 max_retry_delay: float = 60.0, dead_letter_dir: str | os.PathLike | None = None) -> None:
        self.handler = handler
        self.table_name = table_name
        self.region = region
        self.consumer = consumer
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_retry_attempts = max_retry_attempts
        self.max_record_age = max_record_age
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.checkpoints = CheckpointStore(checkpoint_path)
        # Next to the checkpoints by default: both live in DATA_DIR.
        self.dead_letters = DeadLetters(dead_letter_dir or Path(checkpoint_path).parent / "dead-letters")
        kwargs = {"endpoint_url": endpoint_url, "region_name": region,
                      "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID") or "local",
                      "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or "local",
                      "config": Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2})}
        self._ddb = boto3.client("dynamodb", **kwargs)
        self._streams = boto3.client("dynamodbstreams", **kwargs)
        self._arn: str | None = None
        self._shards: dict[str, _Shard] = {}
        self._last_problem: str | None = None
        super().__init__()

    # -- the polling loop (Poller) ---------------------------------------------------------------------------
    def start(self) -> StreamPump:
        waiting = len(self.dead_letters.list(self.consumer))
        if waiting:  # left by an earlier run: say so at every start until someone replays them
            log.warning("%d dead-lettered record(s) of %s wait in %s/%s/ (python -m chalicelib.local replay)",
                        waiting, self.consumer, self.dead_letters.root, self.consumer)
        return super().start()

    @property
    def thread_name(self) -> str:
        return f"stream-pump-{self.consumer}"

    @property
    def arn(self) -> str:
        """The stream being read (known once poll_once found the table's latest stream)."""
        assert self._arn is not None, "no stream yet"
        return self._arn

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
                saved = self.checkpoints.shards(self.consumer, self.arn) if saved is None else saved
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
            self.checkpoints.save(self.consumer, self.arn, shard.shard_id, shard.seq, done=True)
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
        """One invocation with the head of `pending`; returns the number of records acknowledged by it."""
        if not shard.pending:
            return 0
        batch = shard.pending[:shard.window or self.batch_size]
        failed_from, error = self._invoke(batch)
        if failed_from is None or error is None:
            self._ack(shard, batch)
            shard.window, shard.failures = None, 0
            return len(batch)
        # Lambda resumes from the lowest failed sequence number: what precedes it counts as delivered.
        self._ack(shard, batch[:failed_from])
        handled = failed_from
        rest = batch[failed_from:]
        if shard.failures == 0 and error.whole_batch:  # the traceback once; the retries get a line each
            log.error("stream handler %s raised on a batch of %d:\n%s", self.consumer, len(batch), error.text)
        shard.failures += 1
        if failed_from == 0 and error.whole_batch and len(rest) > 1:
            # BisectBatchOnFunctionError: halve the batch, so one poison record cannot hold back the others.
            shard.window = max(1, len(rest) // 2)
            attempts = None
        else:
            head = rest[0]
            attempts = shard.attempts[_seq(head)] = shard.attempts.get(_seq(head), 0) + 1
            if attempts > self.max_retry_attempts or self._too_old(head):
                self._dead_letter(shard, head, error.text, attempts)
                shard.window, shard.failures = None, 0
                return handled + 1
        delay = self._backoff(shard.failures)
        log.warning("stream handler %s failed %d record(s) from %s (%s; %s); retrying in %.1f s", self.consumer,
                    len(rest), _seq(rest[0]), error.summary,
                    "bisecting" if attempts is None else f"attempt {attempts} of {self.max_retry_attempts + 1}",
                    delay)
        self._stop.wait(delay)  # when stopping, the rest stays unacknowledged and comes again next run
        return handled

    def _backoff(self, failures: int) -> float:
        # Exponential, capped, and jittered (half fixed, half random), so retries neither hammer nor synchronise.
        delay = min(self.max_retry_delay, self.retry_delay * 2 ** (failures - 1))
        return delay / 2 + random.uniform(0, delay / 2)

    def _too_old(self, raw: dict[str, Any]) -> bool:
        created = raw["dynamodb"].get("ApproximateCreationDateTime")
        if self.max_record_age is None or not isinstance(created, dt.datetime):
            return False
        return (dt.datetime.now(dt.UTC) - created).total_seconds() > self.max_record_age

    def _dead_letter(self, shard: _Shard, raw: dict[str, Any], error: str, attempts: int) -> None:
        # Written before the ack: the checkpoint only ever passes records delivered or safely set aside.
        path = self.dead_letters.put(self.consumer, to_lambda_record(raw, self.arn, self.region), error=error,
                                     attempts=attempts, shard_id=shard.shard_id)
        log.error("stream handler %s gave up on record %s after %d attempt(s); dead-lettered to %s "
                  "(replay: python -m chalicelib.local replay)", self.consumer, _seq(raw), attempts, path)
        self._ack(shard, [raw])

    def _invoke(self, batch: list[dict[str, Any]]) -> tuple[int | None, _Failure | None]:
        """Call the handler; (None, None) when the whole batch succeeded, else the index to retry from and why."""
        records = [to_lambda_record(r, self.arn, self.region) for r in batch]
        with _ErrorLog() as errors:
            try:
                result = self.handler({"Records": records}, lambda_context(self.consumer))
            except Exception as exc:
                return 0, _Failure(traceback.format_exc(), whole_batch=True, summary=f"{type(exc).__name__}: {exc}")
        failures = result.get("batchItemFailures") if isinstance(result, dict) else None
        if not failures:
            return None, None
        seqs = [_seq(r) for r in batch]
        ids = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
        if any(i not in seqs for i in ids):
            # Lambda treats a malformed or unknown identifier as a failure of the whole batch.
            text = f"unknown itemIdentifier(s) {ids} in batchItemFailures: the whole batch is retried"
            return 0, _Failure(text, whole_batch=False, summary=text)
        text = "reported in batchItemFailures; the handler logged:\n" + ("\n".join(errors.lines) or "(nothing)")
        return min(seqs.index(str(i)) for i in ids), _Failure(text, whole_batch=False, summary="batchItemFailures")

    def _ack(self, shard: _Shard, acked: list[dict[str, Any]]) -> None:
        if not acked:
            return
        shard.pending = shard.pending[len(acked):]
        for raw in acked:
            shard.attempts.pop(_seq(raw), None)
        shard.seq = _seq(acked[-1])
        self.checkpoints.save(self.consumer, self.arn, shard.shard_id, shard.seq)


@dataclass(frozen=True)
class _Failure:
    text: str          # what the dead-letter file keeps: the traceback, or what the handler logged
    whole_batch: bool  # the handler raised: bisect the batch to find the record it cannot take
    summary: str       # one line for the console


class _ErrorLog(logging.Handler):
    """Collects what the handler logs at ERROR from this thread while it runs: the reasons for failed records."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(self.format(record))

    def __enter__(self) -> _ErrorLog:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        logging.getLogger().removeHandler(self)
