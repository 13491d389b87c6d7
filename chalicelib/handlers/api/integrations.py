"""Integration routes: other NexusRMS modules push projects and invoices (role integration or admin)."""
from __future__ import annotations

from typing import Annotated

from chalice import Blueprint
from pydantic import Field, create_model, model_validator

from chalicelib.domain import integration_cases as cases
from chalicelib.domain import integrations as di
from chalicelib.domain.errors import NotFound
from chalicelib.domain.values import money
from chalicelib.handlers.routing import Ctx, api, json_response
from chalicelib.handlers.schemas import Currency, Date, Id, Money, Strict, Timestamp

bp = Blueprint(__name__)


class ProjectIn(Strict):
    client_id: Id
    contact_ids: Annotated[list[Id], Field(max_length=100)] = []
    status: di.ProjectStatus
    start_date: Date | None = None
    end_date: Date | None = None
    value: Money | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> ProjectIn:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class InvoiceIn(Strict):
    client_id: Id
    kind: di.InvoiceKind
    amount: Money
    currency: Currency | None = None
    issued_at: Timestamp | None = None
    due_date: Date | None = None
    paid_at: Timestamp | None = None
    status: di.InvoiceStatus


def _out(name: str, record: type) -> type:
    money = {"value", "amount"}
    return create_model(name, **{n: (str | None if n in money else f.annotation, ...)
                                 for n, f in record.model_fields.items() if not f.exclude})


ProjectOut, InvoiceOut = _out("Project", di.Project), _out("Invoice", di.Invoice)


def _answer(record, created: bool):
    data = record.public()
    for key in ("value", "amount"):
        if data.get(key) is not None:
            data[key] = money(getattr(record, key))
    return json_response(data, 201 if created else 200)


def _register(kind: str, noun: str, body: type, out: type, upsert, read) -> None:
    """PUT (create or replace) and GET of one kind of fact, keyed by the pushing module's id."""
    param = f"{kind}_id"
    path = f"/v1/integrations/{kind}s/{{{param}}}"

    @api(bp, "PUT", path, summary=f"Create or replace {noun}", need="integration", tag="integrations", body=body,
         response=out, also={201: "Created: the first PUT of this id."})
    def put(ctx: Ctx, **ids: str):
        return _answer(*upsert(ctx.stores(), ids[param], ctx.body().model_dump(exclude_none=True)))

    @api(bp, "GET", path, summary=f"Get {noun} as stored", need="integration", tag="integrations", response=out)
    def get(ctx: Ctx, **ids: str):
        fact = read(ctx.stores().facts, ids[param])
        if fact is None:
            raise NotFound(f"{kind} {ids[param]} not found")
        return _answer(fact, False)


_register("project", "a project", ProjectIn, ProjectOut, cases.upsert_project, lambda facts, i: facts.project(i))
_register("invoice", "an invoice, quote or credit note", InvoiceIn, InvoiceOut, cases.upsert_invoice,
          lambda facts, i: facts.invoice(i))
