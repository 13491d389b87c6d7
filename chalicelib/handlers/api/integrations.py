"""Integration routes: other NexusRMS modules push projects and invoices (role integration or admin)."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Optional

from chalice import Blueprint
from pydantic import AwareDatetime, Field, create_model, model_validator

from chalicelib.domain import integration_cases as cases
from chalicelib.domain import integrations as di
from chalicelib.domain.errors import NotFound
from chalicelib.domain.values import money
from chalicelib.handlers.routing import Ctx, api, json_response
from chalicelib.handlers.schemas import Currency, Id, Money, Strict

bp = Blueprint(__name__)


class ProjectIn(Strict):
    client_id: Id
    contact_ids: Annotated[list[Id], Field(max_length=100)] = []
    status: di.ProjectStatus
    start_date: date | None = None
    end_date: date | None = None
    value: Money | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> "ProjectIn":
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class InvoiceIn(Strict):
    client_id: Id
    kind: di.InvoiceKind
    amount: Money
    currency: Currency | None = None
    issued_at: AwareDatetime | None = None
    due_date: date | None = None
    paid_at: AwareDatetime | None = None
    status: di.InvoiceStatus


def _out(name: str, record: type) -> type:
    money = {"value", "amount"}
    return create_model(name, **{n: (Optional[str] if n in money else f.annotation, ...)
                                 for n, f in record.model_fields.items() if not f.exclude})


ProjectOut, InvoiceOut = _out("Project", di.Project), _out("Invoice", di.Invoice)


def _answer(record, created: bool):
    data = record.public()
    for key in ("value", "amount"):
        if data.get(key) is not None:
            data[key] = money(getattr(record, key))
    return json_response(data, 201 if created else 200)


@api(bp, "PUT", "/v1/integrations/projects/{project_id}", summary="Create or replace a project",
     need="integration", tag="integrations", body=ProjectIn, response=ProjectOut)
def put_project(ctx: Ctx, project_id: str):
    data = ctx.body().model_dump(exclude_none=True)
    return _answer(*cases.upsert_project(ctx.stores(), project_id, data))


@api(bp, "GET", "/v1/integrations/projects/{project_id}", summary="Get a project as stored",
     need="integration", tag="integrations", response=ProjectOut)
def get_project(ctx: Ctx, project_id: str):
    project = ctx.stores().facts.project(project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    return _answer(project, False)


@api(bp, "PUT", "/v1/integrations/invoices/{invoice_id}", summary="Create or replace an invoice, quote or credit note",
     need="integration", tag="integrations", body=InvoiceIn, response=InvoiceOut)
def put_invoice(ctx: Ctx, invoice_id: str):
    data = ctx.body().model_dump(exclude_none=True)
    return _answer(*cases.upsert_invoice(ctx.stores(), invoice_id, data))


@api(bp, "GET", "/v1/integrations/invoices/{invoice_id}", summary="Get an invoice as stored",
     need="integration", tag="integrations", response=InvoiceOut)
def get_invoice(ctx: Ctx, invoice_id: str):
    invoice = ctx.stores().facts.invoice(invoice_id)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} not found")
    return _answer(invoice, False)
