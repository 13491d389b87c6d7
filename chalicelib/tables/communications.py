"""Communication repository: items in the client's partition, newest first by their occurrence ULID."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import PutError

from chalicelib.domain.communications import Communication
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.ports import Position
from chalicelib.domain.values import ulid_bound
from chalicelib.tables import keys
from chalicelib.tables.base import configure
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.items import CommunicationItem
from chalicelib.tables.paging import one_page
from chalicelib.tables.records import fields_of, record_from

_DATES = ("followup_date", "meeting_date")


def to_item(comm: Communication) -> CommunicationItem:
    data = fields_of(comm)
    for key in _DATES:
        data[key] = data[key].isoformat() if data[key] else None
    data["attachments"] = [a.model_dump() for a in comm.attachments]
    item = CommunicationItem(keys.client_pk(comm.tenant_id, comm.client_id), keys.comm_sk(comm.id), **data)
    item.search = "\n".join((comm.subject or "", comm.body or "")).casefold()
    if comm.requires_followup and comm.deleted_at is None:
        item.gsi1pk = keys.followups_pk(comm.tenant_id)
        item.gsi1sk = f"{comm.followup_date.isoformat() if comm.followup_date else '9999-12-31'}#{comm.id}"
    return item


def from_item(item: CommunicationItem) -> Communication:
    return record_from(Communication, item)


def _bound(moment: datetime, last: bool) -> str:
    """The sort key just before (or after) every communication that occurred at `moment`."""
    return keys.comm_sk(ulid_bound(moment, last))


class CommunicationRepository:
    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    def add(self, comm: Communication) -> Communication:
        with storage_errors():
            try:
                to_item(comm).save(condition=CommunicationItem.pk.does_not_exist())
            except PutError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    raise Conflict("conflict", "a communication with this id exists") from exc
                raise
        return comm

    def put(self, comm: Communication) -> Communication:
        with storage_errors():
            to_item(comm).save(condition=CommunicationItem.pk.exists())
        return comm

    def get(self, client_id: str, comm_id: str) -> Communication:
        with storage_errors():
            try:
                item = CommunicationItem.get(keys.client_pk(self.tenant_id, client_id), keys.comm_sk(comm_id),
                                             consistent_read=True)
            except CommunicationItem.DoesNotExist:
                item = None
        if item is None or item.deleted_at is not None:
            raise NotFound(f"communication {comm_id} not found")
        return from_item(item)

    def page(self, client_id: str, filters: dict[str, Any], limit: int, after: Position | None
             ) -> tuple[list[Communication], Position | None]:
        """Newest first; the date range narrows the key range, the other filters run inside the partition."""
        low = _bound(filters["from"], False) if filters.get("from") else keys.COMM_PREFIX
        high = _bound(filters["to"], True) if filters.get("to") else keys.COMM_PREFIX + "\uffff"
        condition = CommunicationItem.deleted_at.does_not_exist()
        if filters.get("type"):
            condition &= CommunicationItem.type.is_in(*filters["type"])
        for name, attr in (("contact_id", CommunicationItem.client_contact_id),
                           ("project_id", CommunicationItem.project_id), ("thread_id", CommunicationItem.thread_id)):
            if filters.get(name):
                condition &= attr == filters[name]
        if filters.get("q"):
            condition &= CommunicationItem.search.contains(filters["q"].casefold())
        items, position = one_page(CommunicationItem.query(
            keys.client_pk(self.tenant_id, client_id), CommunicationItem.sk.between(low, high),
            filter_condition=condition, scan_index_forward=False, last_evaluated_key=after, page_size=100), limit)
        return [from_item(i) for i in items], position

    def of_client(self, client_id: str) -> list[Communication]:
        """Every communication of a client, deleted ones too (the response-time recount needs the history)."""
        with storage_errors():
            return [from_item(i) for i in CommunicationItem.query(
                keys.client_pk(self.tenant_id, client_id), CommunicationItem.sk.startswith(keys.COMM_PREFIX),
                consistent_read=True)]

    def set_response_time(self, comm: Communication, minutes: int | None) -> None:
        """A derived figure: written without touching updated_at, so edits by people stay distinguishable."""
        action = (CommunicationItem.response_time_minutes.set(minutes) if minutes is not None
                  else CommunicationItem.response_time_minutes.remove())
        with storage_errors():
            CommunicationItem._get_connection().update_item(
                keys.client_pk(self.tenant_id, comm.client_id), keys.comm_sk(comm.id), actions=[action],
                condition=CommunicationItem.pk.exists())

    def followups(self, due_before: str | None, limit: int, after: Position | None
                  ) -> tuple[list[Communication], Position | None]:
        """Open follow-ups across the tenant, soonest first, from the follow-up index."""
        condition = CommunicationItem.gsi1sk <= f"{due_before}#\uffff" if due_before else None
        items, position = one_page(CommunicationItem.gsi1.query(keys.followups_pk(self.tenant_id), condition,
                                                                last_evaluated_key=after, page_size=100),
                                   limit, ("pk", "sk", "gsi1pk", "gsi1sk"))
        return [from_item(i) for i in items], position
