"""Activity repository: a client's timeline in its own partition, newest first; entries keyed by stream event."""
from __future__ import annotations

from typing import Any

from chalicelib.domain.activity import ActivityEntry
from chalicelib.domain.ports import Position
from chalicelib.domain.values import iso
from chalicelib.tables import keys
from chalicelib.tables.base import configure
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.paging import one_page
from chalicelib.tables.records import record_from
from chalicelib.tables.work_items import ActivityItem


class ActivityRepository:
    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    def write(self, entries: list[dict[str, Any]]) -> None:
        """Put each entry under a key made of its time and stream event id: a redelivery rewrites, never adds."""
        with storage_errors(), ActivityItem.batch_write() as batch:
            for e in entries:
                batch.save(ActivityItem(keys.activity_pk(self.tenant_id, e["client_id"]), f"{iso(e['at'])}#{e['id']}",
                                        **{k: v for k, v in e.items() if k != "client_id"}))

    def page(self, client_id: str, limit: int, after: Position | None
             ) -> tuple[list[ActivityEntry], Position | None]:
        """A page of the client's timeline, newest first, and the position after it."""
        items, position = one_page(ActivityItem.query(keys.activity_pk(self.tenant_id, client_id),
                                                      scan_index_forward=False, last_evaluated_key=after,
                                                      page_size=100), limit)
        return [record_from(ActivityEntry, i) for i in items], position
