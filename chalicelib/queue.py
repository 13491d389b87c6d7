"""The jobs queue: SQS when JOBS_QUEUE_URL is set, else a folder queue under DATA_DIR/jobs/ that behaves like SQS.

The folder queue keeps one JSON file per message and moves it by atomic rename between `pending/` (visible),
`inflight/` (received, invisible until the time its name starts with) and `dead/` (received MAX_RECEIVES times
without being deleted: SQS's redrive to a dead-letter queue). A file is claimed by renaming it, so two receivers
never get the same message at once, and a message survives a restart of the local run.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ulid import ULID

from chalicelib.config import get_settings

MAX_RECEIVES = 5            # the redrive policy's maxReceiveCount (deploy/package.py says the same)
VISIBILITY_TIMEOUT = 1800   # seconds: six times the worker's 300 s timeout, as AWS advises for Lambda triggers


def send(message: dict) -> None:
    """Enqueue one job message (a JSON-able dict)."""
    url = get_settings().jobs_queue_url
    if url:
        _sqs(get_settings().region).send_message(QueueUrl=url, MessageBody=json.dumps(message, sort_keys=True))
    else:
        folder().send(message)


def retry_later(receipt_handle: str, seconds: int) -> None:
    """Make a received message visible again in `seconds` (a failed step's backoff)."""
    url = get_settings().jobs_queue_url
    if url:
        _sqs(get_settings().region).change_message_visibility(QueueUrl=url, ReceiptHandle=receipt_handle,
                                                              VisibilityTimeout=seconds)
    else:
        folder().change_visibility(receipt_handle, seconds)


def folder() -> FolderQueue:
    return FolderQueue(Path(get_settings().data_dir) / "jobs")


@lru_cache(maxsize=4)
def _sqs(region: str) -> Any:
    from chalicelib import aws  # boto3 on first send: importing this module stays cheap

    return aws.client("sqs", region_name=region)


def reset_clients() -> None:
    _sqs.cache_clear()


@dataclass(frozen=True)
class Received:
    receipt: str          # the in-flight file's name: valid until the message is visible again
    id: str
    body: dict
    receive_count: int
    sent_at: float        # seconds since the epoch
    first_received_at: float


@dataclass(frozen=True)
class DeadMessage:
    path: Path
    id: str
    body: dict
    receive_count: int
    last_error: str | None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _write(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)  # readers never see half a message


class FolderQueue:
    """A tiny SQS in a folder: send, receive (with a visibility timeout), delete, change visibility, dead letters."""

    def __init__(self, root: str | os.PathLike, *, max_receives: int = MAX_RECEIVES) -> None:
        self.root = Path(root)
        self.max_receives = max_receives
        self.pending, self.inflight, self.dead = self.root / "pending", self.root / "inflight", self.root / "dead"

    def _dirs(self) -> None:
        for folder in (self.pending, self.inflight, self.dead):
            folder.mkdir(parents=True, exist_ok=True)

    def send(self, body: dict) -> str:
        self._dirs()
        message_id = str(ULID())
        _write(self.pending / f"{message_id}.json",
               {"id": message_id, "body": body, "sent_at": time.time(), "receive_count": 0})
        return message_id

    def receive(self, max_messages: int = 1, visibility_timeout: int = VISIBILITY_TIMEOUT) -> list[Received]:
        """Up to `max_messages` visible messages, oldest first, each invisible for `visibility_timeout` seconds."""
        self._dirs()
        self._expire()
        got: list[Received] = []
        for path in sorted(self.pending.glob("*.json")):
            if len(got) >= max_messages:
                break
            target = self.inflight / f"{_now_ms() + visibility_timeout * 1000:015d}-{path.name}"
            try:
                os.rename(path, target)  # the claim: one receiver wins
            except FileNotFoundError:
                continue
            data = json.loads(target.read_text())
            data["receive_count"] = data.get("receive_count", 0) + 1
            data.setdefault("first_received_at", time.time())
            _write(target, data)
            got.append(Received(target.name, data["id"], data["body"], data["receive_count"], data["sent_at"],
                                data["first_received_at"]))
        return got

    def delete(self, receipt: str) -> bool:
        """Remove a received message; False when the receipt is stale (the message became visible again)."""
        try:
            (self.inflight / receipt).unlink()
        except FileNotFoundError:
            return False
        return True

    def change_visibility(self, receipt: str, seconds: int) -> str | None:
        """Visible again in `seconds` (0: now); answers the new receipt, None for a stale one."""
        _, _, name = receipt.partition("-")
        target = self.inflight / f"{_now_ms() + seconds * 1000:015d}-{name}"
        try:
            os.rename(self.inflight / receipt, target)
        except FileNotFoundError:
            return None
        if seconds <= 0:
            self._expire()
        return target.name

    def receipt_of(self, message_id: str) -> str | None:
        """The current receipt of an in-flight message (after a change of visibility renamed it)."""
        return next((p.name for p in self.inflight.glob(f"*-{message_id}.json")), None)

    def note_error(self, message_id: str, error: str) -> None:
        """Keep why the last receive failed on the message (shown for dead letters; SQS keeps no such note)."""
        for path in self.inflight.glob(f"*-{message_id}.json"):
            try:
                data = json.loads(path.read_text())
                _write(path, {**data, "last_error": error[-4000:]})
            except FileNotFoundError:
                pass

    def _expire(self) -> None:
        """In-flight messages whose visibility ended: visible again, or dead after the last receive."""
        now = _now_ms()
        for path in self.inflight.glob("*.json"):
            until, _, name = path.name.partition("-")
            if not until.isdigit() or int(until) > now:
                continue
            try:
                count = json.loads(path.read_text()).get("receive_count", 0)
                os.rename(path, (self.dead if count >= self.max_receives else self.pending) / name)
            except FileNotFoundError:
                continue  # deleted or moved meanwhile

    def counts(self) -> dict[str, int]:
        self._dirs()
        self._expire()
        return {name: len(list(folder.glob("*.json")))
                for name, folder in (("pending", self.pending), ("inflight", self.inflight), ("dead", self.dead))}

    def dead_letters(self) -> list[DeadMessage]:
        self._dirs()
        self._expire()
        found = []
        for path in sorted(self.dead.glob("*.json")):
            data = json.loads(path.read_text())
            found.append(DeadMessage(path, data["id"], data["body"], data.get("receive_count", 0),
                                     data.get("last_error")))
        return found

    def redrive(self, message_id: str) -> bool:
        """A dead letter back to the queue with a fresh receive count (SQS's "start DLQ redrive")."""
        path = self.dead / f"{message_id}.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return False
        data.update(receive_count=0, redriven_at=time.time())
        data.pop("first_received_at", None)
        _write(path, data)
        os.rename(path, self.pending / path.name)
        return True
