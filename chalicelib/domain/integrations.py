"""Facts other NexusRMS modules push (projects, invoices, quotes, credit notes) and the client figures they give."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Literal

from pydantic import Field

from chalicelib.domain.values import Record

ProjectStatus = Literal["planned", "active", "completed", "cancelled"]
InvoiceKind = Literal["quote", "invoice", "credit_note"]
InvoiceStatus = Literal["draft", "open", "approved", "paid", "overdue", "void"]  # approved: quotes, in the portal
OPEN_PROJECT = ("planned", "active")


class Project(Record):
    id: str
    tenant_id: str = Field(exclude=True)
    client_id: str
    contact_ids: list[str] = Field(default_factory=list)
    status: ProjectStatus
    start_date: date | None = None
    end_date: date | None = None
    value: Decimal | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_PROJECT


def needs_active_client(old: Project | None, client_id: str, status: str) -> bool:
    """A new project (or one moved to this client) and any move to `planned`/`active` (`planned` -> `active`
    too) need a client that is not inactive or archived (contract §15)."""
    return old is None or old.client_id != client_id or (status in OPEN_PROJECT and status != old.status)


class Invoice(Record):
    """An invoice, quote or credit note; quotes carry their portal approval."""

    id: str
    tenant_id: str = Field(exclude=True)
    client_id: str
    kind: InvoiceKind
    amount: Decimal
    currency: str
    issued_at: datetime | None = None
    due_date: date | None = None
    paid_at: datetime | None = None
    status: InvoiceStatus
    approved_at: datetime | None = None
    approved_by: str | None = None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Figures:
    """What the facts add up to on the client record."""

    lifetime_revenue: Decimal
    outstanding_balance: Decimal
    projects_count: int
    last_project_at: datetime | None


def figures(projects: list[Project], invoices: list[Invoice]) -> Figures:
    """lifetime revenue = paid invoices - non-void credit notes; outstanding = open or overdue invoices;
    projects count and the latest start leave cancelled projects out."""
    paid = sum((i.amount for i in invoices if i.kind == "invoice" and i.status == "paid"), Decimal("0"))
    credited = sum((i.amount for i in invoices if i.kind == "credit_note" and i.status != "void"), Decimal("0"))
    outstanding = sum((i.amount for i in invoices if i.kind == "invoice" and i.status in ("open", "overdue")),
                      Decimal("0"))
    live = [p for p in projects if p.status != "cancelled"]
    starts = [p.start_date for p in live if p.start_date]
    last = datetime.combine(max(starts), time(), tzinfo=UTC) if starts else None
    return Figures(money2(paid - credited), money2(outstanding), len(live), last)


def money2(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))
