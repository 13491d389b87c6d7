"""Idempotency-Key records: claim the key, run the request once, replay its answer for 24 hours."""
from __future__ import annotations

import time

from pynamodb.exceptions import PutError

from chalicelib.domain.errors import Conflict
from chalicelib.tables import keys
from chalicelib.tables.base import configure
from chalicelib.tables.items import IdempotencyItem
from chalicelib.tables.errors import storage_errors

TTL_SECONDS = 24 * 3600


class IdempotencyStore:
    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    def claim(self, key: str, fingerprint: str) -> tuple[int, str] | None:
        """Claim the key for this request; answer the stored (status, body) when it already ran."""
        pk = keys.idempotency_pk(self.tenant_id, key)
        now = int(time.time())
        item = IdempotencyItem(pk, keys.UNIQUE_SK, state="pending", fingerprint=fingerprint,
                               expires_at=now + TTL_SECONDS)
        with storage_errors():
            try:
                item.save(condition=IdempotencyItem.pk.does_not_exist() | (IdempotencyItem.expires_at < now))
                return None
            except PutError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
            existing = IdempotencyItem.get(pk, keys.UNIQUE_SK, consistent_read=True)
        if existing.fingerprint != fingerprint:
            raise Conflict("idempotency_key_reused", "this Idempotency-Key was used with another request")
        if existing.state != "done":
            raise Conflict("idempotency_in_progress", "a request with this Idempotency-Key is still running")
        return int(existing.status_code), existing.body

    def complete(self, key: str, status_code: int, body: str) -> None:
        item = IdempotencyItem(keys.idempotency_pk(self.tenant_id, key), keys.UNIQUE_SK)
        with storage_errors():
            item.update(actions=[IdempotencyItem.state.set("done"), IdempotencyItem.status_code.set(status_code),
                                 IdempotencyItem.body.set(body)])

    def release(self, key: str) -> None:
        """The request failed: free the key so a retry can run."""
        with storage_errors():
            IdempotencyItem(keys.idempotency_pk(self.tenant_id, key), keys.UNIQUE_SK).delete()
