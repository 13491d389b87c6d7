"""Portal repository: the log of portal sign-ins and actions, and a quote's approval written once."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import UpdateError
from ulid import ULID

from chalicelib.domain.errors import Conflict
from chalicelib.domain.integrations import Invoice
from chalicelib.domain.portal import PortalLogEntry
from chalicelib.domain.ports import Position
from chalicelib.domain.values import iso
from chalicelib.tables import keys
from chalicelib.tables.base import TableItem, configure
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.paging import one_page
from chalicelib.tables.work_items import InvoiceItem, PortalLogItem

LOG_DAYS = 400  # a year of portal activity and then some; older entries expire (TTL)


class PortalRepository:
    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    def log(self, client_id: str, contact_id: str, contact_name: str | None, action: str,
            detail: dict[str, Any] | None, at: datetime) -> None:
        entry_id = str(ULID.from_datetime(at))
        with storage_errors():
            PortalLogItem(keys.portal_log_pk(self.tenant_id, client_id), f"{iso(at)}#{entry_id}", id=entry_id, at=at,
                          contact_id=contact_id, contact_name=contact_name, action=action, detail=detail,
                          expires_at=int(at.timestamp()) + LOG_DAYS * 86400).save()

    def page(self, client_id: str, limit: int, after: Position | None
             ) -> tuple[list[PortalLogEntry], Position | None]:
        """One page of a client's portal activity, newest first."""
        items, position = one_page(PortalLogItem.query(keys.portal_log_pk(self.tenant_id, client_id),
                                                       scan_index_forward=False, last_evaluated_key=after,
                                                       page_size=100), limit)
        return [PortalLogEntry(id=i.id, at=i.at, contact_id=i.contact_id, contact_name=i.contact_name,
                               action=i.action, detail=i.detail) for i in items], position

    def approve(self, quote: Invoice) -> None:
        """Write the approval only over an open quote: of two approvals at once, one wins, one is 409."""
        if quote.approved_at is None or quote.approved_by is None:
            raise ValueError("an approval names when and by whom")
        with storage_errors():
            try:
                TableItem._get_connection().update_item(
                    keys.client_pk(self.tenant_id, quote.client_id), keys.fact_sk(keys.INVOICE_PREFIX, quote.id),
                    actions=[InvoiceItem.status.set("approved"), InvoiceItem.approved_at.set(quote.approved_at),
                             InvoiceItem.approved_by.set(quote.approved_by),
                             InvoiceItem.updated_at.set(quote.updated_at)],
                    condition=InvoiceItem.status == "open")
            except UpdateError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    raise Conflict("quote_not_open", "the quote is no longer open") from exc
                raise
