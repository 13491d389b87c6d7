"""Per-shard stream positions kept in one JSON file, so a restarted pump resumes instead of redelivering."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

# Several pumps (one per stream handler) may share the file within one process.
_LOCK = threading.Lock()


class CheckpointStore:
    """`{consumer: {stream_arn: {shard_id: {"seq": last delivered sequence number | None, "done": bool}}}}`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            # A torn or hand-edited file must not stop the runtime; redelivery is the safe fallback.
            return {}

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)  # atomic: a crash leaves the old or the new file, never half of one

    def shards(self, consumer: str, stream_arn: str) -> dict[str, dict[str, Any]]:
        with _LOCK:
            return dict(self._read().get(consumer, {}).get(stream_arn, {}))

    def save(self, consumer: str, stream_arn: str, shard_id: str, seq: str | None, done: bool = False) -> None:
        with _LOCK:
            data = self._read()
            streams = data.setdefault(consumer, {})
            # Only the current stream matters: a recreated table has a new stream and old positions are void.
            for arn in [a for a in streams if a != stream_arn]:
                del streams[arn]
            entry = streams.setdefault(stream_arn, {}).setdefault(shard_id, {"seq": None, "done": False})
            if seq is not None:
                entry["seq"] = seq
            entry["done"] = entry["done"] or done
            self._write(data)
