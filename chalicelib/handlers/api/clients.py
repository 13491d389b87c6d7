"""Client routes: list, chips, create, read, update, archive and restore; the client request and answer models."""
from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from chalice import Blueprint
from pydantic import Field, create_model, field_validator

from chalicelib.domain import client_cases
from chalicelib.domain.clients import (
    NOT_NULL,
    AddressKind,
    Chip,
    Client,
    ClientStatus,
    ClientType,
    CommunicationPreference,
    PricingTier,
    RiskLevel,
)
from chalicelib.handlers.fields import (
    Country,
    Currency,
    CustomFieldKey,
    Email,
    Id,
    ListQuery,
    Model,
    Money,
    Multiplier,
    Percent,
    Query,
    Strict,
    Tag,
    Text,
    comma_list,
    dedupe,
    if_match_version,
    page_of,
    patch_of,
)
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, query_scope
from chalicelib.handlers.routing import Ctx, api

bp = Blueprint(__name__)


class AddressIn(Strict):
    kind: AddressKind
    line1: Annotated[str, Text(200)] | None = None
    line2: Annotated[str, Text(200)] | None = None
    city: Annotated[str, Text(100)] | None = None
    region: Annotated[str, Text(100)] | None = None
    postal_code: Annotated[str, Text(20)] | None = None
    country: Country | None = None


class ClientCreate(Strict):
    type: ClientType = "company"
    name: Annotated[str, Text(255, 1)]
    status: Literal["lead", "trial", "active", "inactive"] = "active"
    email: Email | None = None
    phone: Annotated[str, Text(50)] | None = None
    fax: Annotated[str, Text(50)] | None = None
    website: Annotated[str, Text(255)] | None = None
    industry: Annotated[str, Text(100)] | None = None
    registration_number: Annotated[str, Text(100)] | None = None
    vat_number: Annotated[str, Text(50)] | None = None
    addresses: Annotated[list[AddressIn], Field(max_length=10)] | None = None
    pricing_tier: PricingTier = "standard"
    price_multiplier: Multiplier | None = None
    currency: Currency | None = None
    credit_limit: Money | None = None
    payment_terms_days: Annotated[int, Field(ge=0, le=365)] | None = None
    discount_percent: Percent | None = None
    tax_exempt: bool = False
    tax_rate_override: Percent | None = None
    communication_preference: CommunicationPreference = "email"
    tags: Annotated[list[Tag], Field(max_length=20)] | None = None
    category_ids: Annotated[list[Id], Field(max_length=10)] | None = None
    custom_fields: Annotated[dict[CustomFieldKey, Any], Field(max_length=50)] | None = None
    pipeline_stage: Annotated[str, Text(50)] | None = None

    _unique = field_validator("tags", "category_ids")(dedupe)


# A PATCH names any writable field; every one is optional and only the named ones are written.
ClientUpdate = patch_of("ClientUpdate", ClientCreate, not_null=NOT_NULL, keep_validators=True)

_MONEY_FIELDS = {"price_multiplier", "credit_limit", "discount_percent", "tax_rate_override",
                 "lifetime_revenue", "outstanding_balance"}


def _out_type(name: str, annotation: Any) -> Any:
    """Money is answered as a decimal string."""
    if name in _MONEY_FIELDS:
        return str | None if type(None) in get_args(annotation) else str
    return annotation


_CLIENT_FIELDS: dict[str, Any] = {
    name: (_out_type(name, f.annotation), ...) for name, f in Client.model_fields.items() if not f.exclude}
ClientOut = create_model("Client", __base__=Model, **_CLIENT_FIELDS, at_risk=(bool, ...))


class ClientFilters(Query):
    """The client list's filters and sort (GET /v1/clients without paging; the export takes exactly these)."""

    status: list[ClientStatus] | None = Field(None, description="comma list")
    type: list[ClientType] | None = Field(None, description="comma list")
    pricing_tier: list[PricingTier] | None = Field(None, description="comma list")
    risk_level: list[RiskLevel] | None = Field(None, description="comma list")
    category_id: Id | None = None
    tag: Tag | None = None
    segment_id: Id | None = None
    chip: Chip | None = None
    q: Annotated[str, Text(200)] | None = None
    sort: Literal["name", "-name", "created_at", "-created_at", "health_score", "-health_score"] = "name"

    _status = field_validator("status", mode="before")(comma_list(get_args(ClientStatus)))
    _type = field_validator("type", mode="before")(comma_list(get_args(ClientType)))
    _tier = field_validator("pricing_tier", mode="before")(comma_list(get_args(PricingTier)))
    _risk = field_validator("risk_level", mode="before")(comma_list(get_args(RiskLevel)))


class ClientListQuery(ClientFilters, ListQuery):
    pass


class Chips(Model):
    all: int
    vip: int
    high_value: int
    at_risk: int
    new: int
    inactive: int


@api(bp, "GET", "/v1/clients", summary="List clients", query=ClientListQuery,
     response=page_of(ClientOut), list_response=True)
def list_clients(ctx: Ctx):
    params = ctx.query()
    filters = params.model_dump(exclude={"cursor", "limit"})
    scope = query_scope("clients", filters)
    position = decode_cursor(params.cursor, ctx.tenant_id, scope, (str, str))  # [sort value, client id]
    page, after = client_cases.list_clients(ctx.stores(), filters, params.limit, after=position)
    return {"items": [c.public() for c in page],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}


@api(bp, "GET", "/v1/clients/chips", summary="Counts of the list's quick filters", response=Chips)
def chips(ctx: Ctx):
    return client_cases.chips(ctx.stores())


class CreateQuery(Query):
    allow_duplicate: bool = Field(False, description="create it even when existing clients may be this one")


@api(bp, "POST", "/v1/clients", summary="Create a client; 409 `possible_duplicate` (the candidates and reasons in "
     "`details`) when live clients may be this one, unless `?allow_duplicate=true`", need="agent",
     body=ClientCreate, query=CreateQuery, response=ClientOut, status=201, idempotent=True,
     also={409: "`possible_duplicate`: each detail names a client that may be this one (`client_id`, "
               "`client_number`, `name`, `reasons`: same_email, same_vat_number, same_name_and_country, "
               "same_email_domain)"})
def create_client(ctx: Ctx):
    return client_cases.create_client(ctx.stores(), ctx.body().model_dump(exclude_none=True),
                                      allow_duplicate=ctx.query().allow_duplicate).public()


@api(bp, "GET", "/v1/clients/{client_id}", summary="Get a client", response=ClientOut)
def get_client(ctx: Ctx, client_id: str):
    return client_cases.get_client(ctx.stores(), client_id).public()


@api(bp, "PATCH", "/v1/clients/{client_id}", summary="Update the named fields of a client", need="agent",
     body=ClientUpdate, response=ClientOut)
def update_client(ctx: Ctx, client_id: str):
    return client_cases.update_client(ctx.stores(), client_id, ctx.changes(),
                                      expected_version=if_match_version(ctx.header("if-match"))).public()


@api(bp, "POST", "/v1/clients/{client_id}/archive", summary="Archive (soft-delete) a client", need="manager",
     response=ClientOut)
def archive_client(ctx: Ctx, client_id: str):
    return client_cases.archive_client(ctx.stores(), client_id).public()


@api(bp, "POST", "/v1/clients/{client_id}/restore", summary="Restore an archived client", need="manager",
     response=ClientOut)
def restore_client(ctx: Ctx, client_id: str):
    return client_cases.restore_client(ctx.stores(), client_id).public()
