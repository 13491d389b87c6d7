"""`replay`: stream records that failed for good, applied again (the local dead letters, or AWS's failure queue)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from chalicelib.ops.stream_failures import Outcome, replay_queue

REBUILD = ("every stream effect is a recomputation: `python -m chalicelib.ops recount --all`, `segments --all` and "
           "`rescore --all` rebuild what these records would have done (then `replay --drop-expired` drops them)")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "es" if noun.endswith("h") else "s")


def _keys(record: dict[str, Any]) -> str:
    keys = record.get("dynamodb", {}).get("Keys", {})
    return " ".join(next(iter(keys[k].values()), "") for k in sorted(keys) if isinstance(keys[k], dict)) or "?"


def replay_folder(app: Any, folder: Path, *, consumer: str | None, file: str | None, out: TextIO) -> int:
    """The dead letters of the local stream pump, in stream order, each to its handler in the app; a success deletes
    its file (the same replay as `python -m chalicelib.local replay`)."""
    from chalicelib.local.dead_letters import DeadLetters, replay
    from chalicelib.local.lambda_runtime import event_sources

    letters = [DeadLetters.read(file)] if file else DeadLetters(folder).list(consumer)
    if not letters:
        print(f"nothing to replay in {folder}/", file=out)
        return 0
    handlers = {source.name: source.handler for source in event_sources(app, "dynamodb")}
    applied = failed = 0
    for letter in letters:
        ok, _ = replay([letter], handlers)
        what = (f"{letter.consumer} record {letter.sequence_number} "
                f"({letter.record.get('eventName')} {_keys(letter.record)})")
        if ok:
            applied += 1
            print(f"applied {what}; {letter.path.name} deleted", file=out)
        else:
            failed += 1
            print(f"failed again: {what}; kept in {letter.path} (see the log)", file=out)
    print(f"replayed {applied}, {failed} failed" + (f" (kept in {folder}/)" if failed else ""), file=out)
    return 1 if failed else 0


def apply_records(records: list[dict[str, Any]]) -> list[str]:
    """Lambda-shaped records to the app's stream handler, as `on_table_stream` hands them over; answers the
    sequence numbers it reported failed."""
    from chalice.app import DynamoDBEvent

    from chalicelib.handlers.stream import handle_stream_batch

    answer = handle_stream_batch(list(DynamoDBEvent({"Records": records}, None)))
    return [str(failure.get("itemIdentifier")) for failure in answer.get("batchItemFailures", [])]


def replay_failure_queue(queue_url: str, *, drop_gone: bool, out: TextIO) -> int:
    """Every message of the stream mapping's OnFailure queue: its records read from the stream and applied; the
    message deleted when none failed, kept otherwise (and when the records are past the stream's retention)."""
    from botocore.config import Config

    from chalicelib import aws
    from chalicelib.config import get_settings

    settings = get_settings()
    bounded = Config(connect_timeout=settings.db_connect_timeout, read_timeout=10, retries={"max_attempts": 3})
    sqs = aws.client("sqs", region_name=settings.region, config=bounded)
    streams = aws.client("dynamodbstreams", region_name=settings.region, endpoint_url=settings.dynamodb_endpoint,
                         config=bounded)

    def report(outcome: Outcome) -> None:
        batch = outcome.batch or "a message"
        if outcome.error:
            print(f"kept {batch}: {outcome.error}", file=out)
        elif outcome.gone:
            verb = "dropped" if outcome.deleted else "kept"
            print(f"{verb} {batch}: its records are past the stream's 24 h retention ({outcome.gone})", file=out)
        elif outcome.failed:
            print(f"kept {batch}: {len(outcome.failed)} of {_count(outcome.records, 'record')} failed again "
                  f"({', '.join(outcome.failed[:5])}{'...' if len(outcome.failed) > 5 else ''}; see the log)",
                  file=out)
        else:
            print(f"applied {batch}: {_count(outcome.records, 'record')}; message deleted", file=out)
        out.flush()

    outcomes = replay_queue(sqs, streams, queue_url, apply_records, report=report, drop_gone=drop_gone)
    if not outcomes:
        print(f"nothing to replay in {queue_url}", file=out)
        return 0
    kept = [o for o in outcomes if not o.deleted]
    applied = [o for o in outcomes if o.deleted and not o.gone]
    print(f"replayed {_count(len(applied), 'failed batch')} ({_count(sum(o.records for o in applied), 'record')}), "
          f"{len(kept)} kept in the queue", file=out)
    if any(o.gone and not o.deleted for o in outcomes):
        print(REBUILD, file=out)
    return 1 if kept else 0
