"""Activity repository: a client's timeline in its own partition, newest first; entries keyed by stream event."""
from __future__ import annotations

from chalicelib.domain.values import iso
from chalicelib.tables import keys
from chalicelib.tables.base import configure
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.paging import one_page
from chalicelib.tables.work_items import ActivityItem


class ActivityRepository:
    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    def write(self, entries: list[dict]) -> None:
        """Put each entry under a key made of its time and stream event id: a redelivery rewrites, never adds."""
        with storage_errors(), ActivityItem.batch_write() as batch:
            for e in entries:
                batch.save(ActivityItem(keys.activity_pk(self.tenant_id, e["client_id"]), f"{iso(e['at'])}#{e['id']}",
                                        **{k: v for k, v in e.items() if k != "client_id"}))

    def page(self, client_id: str, limit: int, after: dict | None) -> tuple[list[ActivityItem], dict | None]:
        return one_page(ActivityItem.query(keys.activity_pk(self.tenant_id, client_id), scan_index_forward=False,
                                           last_evaluated_key=after, page_size=100), limit)
