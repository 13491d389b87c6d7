"""Hands `.eml` files dropped in DATA_DIR/inbound/ to the S3 handler, as SES receipt rules and S3 would."""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import shutil
import time
import traceback
import urllib.parse
from pathlib import Path
from typing import Any

from chalicelib.local.lambda_runtime import Handler, lambda_context
from chalicelib.local.polling import Poller

log = logging.getLogger("nexus.local.inbox")


def s3_put_event(bucket: str, key: str, size: int, etag: str, region: str) -> dict[str, Any]:
    """An S3 ObjectCreated:Put notification (every key chalice's S3Event reads, and the rest Lambda sends)."""
    now = dt.datetime.now(dt.UTC)
    return {"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:local"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "local", "x-amz-id-2": "local"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "local-inbox",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "local"}, "arn": f"arn:aws:s3:::{bucket}"},
            # S3 URL-encodes keys in notifications; chalice's S3Event decodes them with unquote_plus.
            "object": {"key": urllib.parse.quote_plus(key, safe="/"), "size": size, "eTag": etag,
                       "sequencer": f"{time.time_ns():X}"},
        },
    }]}


def _unique(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


class InboxWatcher(Poller):
    """Polls `inbox_dir` for `*.eml`; each file is stored as an S3 object, handed over once, then moved aside."""

    def __init__(self, handler: Handler, *, inbox_dir: str | os.PathLike, s3_local_dir: str | os.PathLike,
                 bucket: str, region: str, prefix: str = "inbound/", poll_interval: float = 1.0,
                 settle_seconds: float = 0.5, function_name: str = "on_inbound_email") -> None:
        self.handler = handler
        self.inbox = Path(inbox_dir)
        self.s3_local_dir = Path(s3_local_dir)
        self.bucket = bucket
        self.region = region
        self.prefix = prefix
        self.poll_interval = poll_interval
        self.settle_seconds = settle_seconds
        self.function_name = function_name
        super().__init__()

    @property
    def processed_dir(self) -> Path:
        return self.inbox / "processed"

    @property
    def failed_dir(self) -> Path:
        return self.inbox / "failed"

    @property
    def thread_name(self) -> str:
        return "inbox-watcher"

    def start(self) -> InboxWatcher:
        for folder in (self.inbox, self.processed_dir, self.failed_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return super().start()

    def poll_once(self) -> list[Path]:
        """Hand over every settled `.eml`; returns where each file went (processed/ or failed/)."""
        if not self.inbox.is_dir():
            return []
        moved = []
        now = time.time()
        for path in sorted(self.inbox.glob("*.eml")):
            # A file still being copied in looks fresh; take it on a later poll, once complete.
            if path.name.startswith(".") or not path.is_file() or now - path.stat().st_mtime < self.settle_seconds:
                continue
            moved.append(self._hand_over(path))
        return moved

    def _object_key(self, path: Path) -> str:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-") or "message"
        return f"{self.prefix}{stamp}-{safe}.eml"

    def _hand_over(self, path: Path) -> Path:
        key = self._object_key(path)
        target = self.s3_local_dir / self.bucket / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        data = target.read_bytes()
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        event = s3_put_event(self.bucket, key, len(data), etag, self.region)
        try:
            self.handler(event, lambda_context(self.function_name))
        except Exception as exc:
            dest = _unique(self.failed_dir / path.name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, dest)
            dest.with_name(dest.name + ".error.txt").write_text(traceback.format_exc())
            log.error("inbound email %s failed (%s: %s); moved to %s", path.name, type(exc).__name__, exc, dest)
            return dest
        dest = _unique(self.processed_dir / path.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, dest)
        log.info("inbound email %s handed over as s3://%s/%s", path.name, self.bucket, key)
        return dest
