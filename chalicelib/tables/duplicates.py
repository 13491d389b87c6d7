"""Possible duplicates: the lookup keys two clients or more hold, paged, and the pairs dismissed as not the same."""
from __future__ import annotations

from collections.abc import Iterable

from chalicelib.domain.values import utcnow
from chalicelib.tables import keys
from chalicelib.tables.base import configure
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.items import ClientKeyItem, DismissedPair, DuplicateEntry

KIND = "client"


class DuplicateRepository:
    def __init__(self, tenant_id: str, actor: str | None = None):
        configure()
        self.tenant_id = tenant_id
        self.actor = actor

    def sync(self, name: str, value: str) -> int:
        """Make the duplicates list agree with the key's holders now: listed while two or more hold it, removed
        otherwise (a recomputation: a record delivered twice or late changes nothing). Answers the holders."""
        sk = f"{name}={value}"
        with storage_errors():
            try:
                held = ClientKeyItem.get(keys.client_key_pk(self.tenant_id, name, value), keys.UNIQUE_SK,
                                         consistent_read=True).client_ids or set()
            except ClientKeyItem.DoesNotExist:
                held = set()
            entry = DuplicateEntry(keys.duplicates_pk(self.tenant_id, KIND), sk)
            if len(held) >= 2:
                entry.holders = set(held)
                entry.save()
            else:
                entry.delete()
        return len(held)

    def page(self, limit: int, after: str | None) -> tuple[list[tuple[str, str, list[str]]], str | None]:
        """Keys held by two clients or more, in key order after `after`: (name, value, holders), and the sort key
        to continue after (None on the last page)."""
        condition = DuplicateEntry.sk > after if after else None
        out: list[tuple[str, str, list[str]]] = []
        with storage_errors():
            for entry in DuplicateEntry.query(keys.duplicates_pk(self.tenant_id, KIND), condition, limit=limit + 1,
                                              page_size=limit + 1, consistent_read=True):
                name, _, value = entry.sk.partition("=")
                out.append((name, value, sorted(entry.holders or ())))
        more = len(out) > limit
        out = out[:limit]
        return out, (f"{out[-1][0]}={out[-1][1]}" if more and out else None)

    def dismiss(self, a: str, b: str) -> None:
        with storage_errors():
            DismissedPair(keys.dismissed_pk(self.tenant_id, KIND), f"{a}|{b}", at=utcnow(), by=self.actor).save()

    def dismissed(self, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (ordered) pairs were dismissed: BatchGetItem, 100 keys a call."""
        wanted = [(keys.dismissed_pk(self.tenant_id, KIND), f"{a}|{b}") for a, b in dict.fromkeys(pairs)]
        found: set[tuple[str, str]] = set()
        with storage_errors():
            for start in range(0, len(wanted), 100):
                for item in DismissedPair.batch_get(wanted[start:start + 100]):
                    a, _, b = item.sk.partition("|")
                    found.add((a, b))
        return found
