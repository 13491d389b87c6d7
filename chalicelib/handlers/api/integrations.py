"""Integration routes: other NexusRMS modules push projects and invoices (role integration or admin)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from chalice import Blueprint, Response
from pydantic import BaseModel, Field, create_model, model_validator

from chalicelib.domain import integration_cases
from chalicelib.domain.integrations import Invoice, InvoiceKind, InvoiceStatus, Project, ProjectStatus
from chalicelib.domain.ports import Stores
from chalicelib.domain.values import money
from chalicelib.handlers.fields import Currency, Date, Id, Model, Money, Strict, Timestamp
from chalicelib.handlers.routing import Ctx, api, json_response

bp = Blueprint(__name__)


class ProjectIn(Strict):
    client_id: Id
    contact_ids: Annotated[list[Id], Field(max_length=100)] = []
    status: ProjectStatus
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
    kind: InvoiceKind
    amount: Money
    currency: Currency | None = None
    issued_at: Timestamp | None = None
    due_date: Date | None = None
    paid_at: Timestamp | None = None
    status: InvoiceStatus


MONEY = ("value", "amount")  # answered as decimal strings


def _out(name: str, record: type[BaseModel]) -> type[BaseModel]:
    fields: dict[str, Any] = {n: (str | None if n in MONEY else f.annotation, ...)
                              for n, f in record.model_fields.items() if not f.exclude}
    return create_model(name, __base__=Model, **fields)


ProjectOut, InvoiceOut = _out("Project", Project), _out("Invoice", Invoice)


def _answer(fact: Project | Invoice, created: bool) -> Response:
    data = fact.public()
    for key in MONEY:
        if data.get(key) is not None:
            data[key] = money(getattr(fact, key))
    return json_response(data, 201 if created else 200)


def _register(kind: str, noun: str, body: type[BaseModel], out: type[BaseModel],
              upsert: Callable[[Stores, str, dict[str, Any]], tuple[Any, bool]],
              read: Callable[[Stores, str], Any]) -> None:
    """PUT (create or replace) and GET of one kind of fact, keyed by the pushing module's id."""
    param = f"{kind}_id"
    path = f"/v1/integrations/{kind}s/{{{param}}}"

    @api(bp, "PUT", path, summary=f"Create or replace {noun}", need="integration", tag="integrations", body=body,
         response=out, also={201: "Created: the first PUT of this id."})
    def put(ctx: Ctx, **ids: str) -> Response:
        return _answer(*upsert(ctx.stores(), ids[param], ctx.body().model_dump(exclude_none=True)))

    @api(bp, "GET", path, summary=f"Get {noun} as stored", need="integration", tag="integrations", response=out)
    def get(ctx: Ctx, **ids: str) -> Response:
        return _answer(read(ctx.stores(), ids[param]), False)


_register("project", "a project", ProjectIn, ProjectOut, integration_cases.upsert_project,
          integration_cases.get_project)
_register("invoice", "an invoice, quote or credit note", InvoiceIn, InvoiceOut, integration_cases.upsert_invoice,
          integration_cases.get_invoice)
