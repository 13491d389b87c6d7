"""Stream records the pump gave up on, one JSON file each under DATA_DIR/dead-letters/<consumer>/, and their replay."""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.local.lambda_runtime import Handler, lambda_context

log = logging.getLogger("nexus.local.stream")


@dataclass(frozen=True)
class DeadLetter:
    path: Path
    consumer: str
    record: dict[str, Any]   # the Lambda-shaped record, as the handler got it

    @property
    def sequence_number(self) -> str:
        return self.record["dynamodb"]["SequenceNumber"]


def _stream_order(path: Path) -> tuple[int, str]:
    # Sequence numbers are decimal strings: compare them as numbers, so replay keeps stream order.
    return len(path.stem), path.stem


class DeadLetters:
    """The folder the local pump writes to, as Lambda's OnFailure destination (an SQS queue) is in AWS."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def put(self, consumer: str, record: dict[str, Any], *, error: str, attempts: int, shard_id: str) -> Path:
        """Write the record and why it failed; the file is complete before this returns (then it may be acked)."""
        folder = self.root / consumer
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{record['dynamodb']['SequenceNumber']}.json"
        entry = {"consumer": consumer, "shard_id": shard_id, "attempts": attempts, "error": error,
                 "dead_lettered_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                 "record": record}
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(entry, indent=1))
        os.replace(tmp, path)  # a crash leaves no half-written letter for replay to choke on
        return path

    def list(self, consumer: str | None = None) -> list[DeadLetter]:
        folders = [self.root / consumer] if consumer else sorted(p for p in self.root.glob("*") if p.is_dir())
        return [self.read(path) for folder in folders for path in sorted(folder.glob("*.json"), key=_stream_order)]

    @staticmethod
    def read(path: str | os.PathLike) -> DeadLetter:
        path = Path(path)
        entry = json.loads(path.read_text())
        return DeadLetter(path, entry.get("consumer") or path.parent.name, entry["record"])


def replay(letters: list[DeadLetter], handlers: dict[str, Handler]) -> tuple[int, int]:
    """Hand each record to its consumer again, one per invocation; a success removes its file. Returns (ok, failed).

    Stream handlers are idempotent (every effect recomputes from stored state), so a replay of a record that was
    applied meanwhile changes nothing.
    """
    ok = failed = 0
    for letter in letters:
        handler = handlers.get(letter.consumer)
        if handler is None:
            log.error("%s: the app has no stream handler %s; kept", letter.path, letter.consumer)
            failed += 1
            continue
        try:
            result = handler({"Records": [letter.record]}, lambda_context(letter.consumer))
        except Exception:
            log.error("%s: %s raised again; kept\n%s", letter.path, letter.consumer, traceback.format_exc())
            failed += 1
            continue
        if isinstance(result, dict) and result.get("batchItemFailures"):
            log.error("%s: %s reported the record as failed again; kept", letter.path, letter.consumer)
            failed += 1
            continue
        letter.path.unlink(missing_ok=True)
        log.info("%s: replayed to %s", letter.path, letter.consumer)
        ok += 1
    return ok, failed
