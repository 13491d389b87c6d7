"""Request and response models of the HTTP edge: unknown and read-only fields are rejected."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    WithJsonSchema,
    create_model,
    field_validator,
)

from chalicelib.domain import categories as dca
from chalicelib.domain import category_cases, segment_cases
from chalicelib.domain import clients as dc
from chalicelib.domain import communications as dm
from chalicelib.domain import contacts as dk
from chalicelib.domain import segments as dsg
from chalicelib.domain import threads as dth
from chalicelib.domain.codes import COUNTRIES, CURRENCIES, any_case_pattern
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.settings import CUSTOM_FIELD_KEY
from chalicelib.domain.values import MAX_ID_LENGTH


class Strict(BaseModel):
    """A request body: unknown fields are refused and JSON types are taken as they are (`strict`: a boolean is no
    number, a number no boolean or string; Ctx.body validates every body so, domain models too)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


class Query(BaseModel):
    """Query parameters: text, so numbers are parsed from it; unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _text(max_length: int, min_length: int = 0):
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)]


def _upper_in(allowed: frozenset[str], what: str):
    def check(v: str) -> str:
        v = v.upper()
        if v not in allowed:
            raise ValueError(f"is not an {what} code")
        return v
    return check


def _any_case(codes: frozenset[str]) -> WithJsonSchema:
    """The JSON Schema of a code field: exactly the known codes, in any case (the validator upper-cases them)."""
    return WithJsonSchema({"type": "string", "pattern": any_case_pattern(codes)})


Country = Annotated[str, AfterValidator(_upper_in(COUNTRIES, "ISO 3166-1 alpha-2")), _any_case(COUNTRIES)]
Currency = Annotated[str, AfterValidator(_upper_in(CURRENCIES, "ISO 4217")), _any_case(CURRENCIES)]
Email = Annotated[EmailStr, StringConstraints(max_length=254)]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)]
Multiplier = Annotated[Decimal, Field(gt=0, le=10, decimal_places=4)]
Tag = _text(50, 1)
CustomFieldKey = Annotated[str, StringConstraints(pattern=CUSTOM_FIELD_KEY.pattern)]  # only such keys can be defined
Id = _text(MAX_ID_LENGTH, 1)  # every id a body or query names (contract §16: longer is a 422 / 400)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})", re.IGNORECASE)


def _iso(pattern: re.Pattern, kind: type[date], form: str):
    """Only the ISO text form (or a `kind` value): pydantic alone also takes 0 or "1700000000" as unix times. Parsed
    here because strict validation after a before-validator takes no text."""
    def check(value: Any) -> Any:
        if isinstance(value, kind):
            return value
        if isinstance(value, str) and pattern.fullmatch(value):
            try:
                return kind.fromisoformat(value.upper())
            except ValueError:
                pass
        raise ValueError(f"must be {form}")
    return check


# Every date and timestamp of a body or query uses these, never bare `date` / `datetime`.
Date = Annotated[date, BeforeValidator(_iso(_ISO_DATE, date, "a date YYYY-MM-DD"))]
Timestamp = Annotated[AwareDatetime, BeforeValidator(
    _iso(_ISO_TIMESTAMP, datetime, "an ISO 8601 timestamp with a time zone, e.g. 2024-05-01T09:30:00Z"))]


def _since_epoch(value: datetime) -> datetime:
    if value < datetime(1970, 1, 1, tzinfo=UTC):
        raise ValueError("must be 1970-01-01 or later")
    return value


class AddressIn(Strict):
    kind: dc.AddressKind
    line1: _text(200) | None = None
    line2: _text(200) | None = None
    city: _text(100) | None = None
    region: _text(100) | None = None
    postal_code: _text(20) | None = None
    country: Country | None = None


def _dedupe(values: list[str] | None) -> list[str] | None:
    """Drop repeats, ignoring case as the tag filter does; the first spelling wins."""
    if values is None:
        return None
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.casefold(), value)
    return list(seen.values())


class ClientCreate(Strict):
    type: dc.ClientType = "company"
    name: _text(255, 1)
    status: Literal["lead", "trial", "active", "inactive"] = "active"
    email: Email | None = None
    phone: _text(50) | None = None
    fax: _text(50) | None = None
    website: _text(255) | None = None
    industry: _text(100) | None = None
    registration_number: _text(100) | None = None
    vat_number: _text(50) | None = None
    addresses: Annotated[list[AddressIn], Field(max_length=10)] | None = None
    pricing_tier: dc.PricingTier = "standard"
    price_multiplier: Multiplier | None = None
    currency: Currency | None = None
    credit_limit: Money | None = None
    payment_terms_days: Annotated[int, Field(ge=0, le=365)] | None = None
    discount_percent: Percent | None = None
    tax_exempt: bool = False
    tax_rate_override: Percent | None = None
    communication_preference: dc.CommunicationPreference = "email"
    tags: Annotated[list[Tag], Field(max_length=20)] | None = None
    category_ids: Annotated[list[Id], Field(max_length=10)] | None = None
    custom_fields: Annotated[dict[CustomFieldKey, Any], Field(max_length=50)] | None = None
    pipeline_stage: _text(50) | None = None

    _unique = field_validator("tags", "category_ids")(_dedupe)


def out_model(name: str, record: type[BaseModel], **extra: Any) -> type[BaseModel]:
    """The answer model of a domain record: its public fields (those not excluded), plus `extra` ones."""
    return create_model(name, **{n: (f.annotation, ...) for n, f in record.model_fields.items() if not f.exclude},
                        **extra)


def _optional(f: Any) -> Any:
    """The field's type, nullable, keeping its constraints."""
    return Annotated[f.annotation | None, *f.metadata] if f.metadata else f.annotation | None


def _no_default(schema: dict) -> None:
    schema.pop("default", None)  # left out means "unchanged"; there is no null default to show


def _nullable(annotation: Any) -> bool:
    return type(None) in get_args(annotation)


def patch_of(name: str, source: type[BaseModel], *, not_null: tuple[str, ...] | None = None,
             skip: tuple[str, ...] = ()) -> type[BaseModel]:
    """A PATCH body over `source`'s fields: every one optional, only the named ones written. Null (clearing a
    field) is taken except for `not_null` (by default the fields `source` refuses null for): those refuse it
    here, so the OpenAPI document marks nullable exactly what is accepted."""
    if not_null is None:
        not_null = tuple(n for n, f in source.model_fields.items() if not _nullable(f.annotation))
    fields: dict[str, Any] = {}
    for n, f in source.model_fields.items():
        if n in skip:
            continue
        if n in not_null:
            kinds = [a for a in get_args(f.annotation) if a is not type(None)] if _nullable(f.annotation) else []
            kind = Union[tuple(kinds)] if kinds else f.annotation  # noqa: UP007 (built at run time)
            kind = Annotated[kind, *f.metadata] if f.metadata else kind
            fields[n] = (kind, Field(None, description=f.description, json_schema_extra=_no_default))
        else:
            fields[n] = (_optional(f), Field(None, description=f.description))
    return create_model(name, __base__=Strict, **fields)


# A PATCH names any writable field; every one is optional and only the named ones are written.
ClientUpdate = patch_of("ClientUpdate", ClientCreate, not_null=dc.NOT_NULL)
ClientUpdate.__pydantic_decorators__ = ClientCreate.__pydantic_decorators__
ClientUpdate.model_rebuild(force=True)

CLIENT_READ_ONLY = frozenset({
    "id", "client_number", "node_client_id", "node_url", "primary_contact", "health_score", "risk_level",
    "churn_probability", "at_risk", "lead_classification", "lifetime_revenue", "outstanding_balance",
    "projects_count", "last_project_at", "last_contacted_at", "avg_response_time_minutes", "version",
    "created_at", "updated_at", "archived_at", "created_by", "import_id",
})

_MONEY_FIELDS = {"price_multiplier", "credit_limit", "discount_percent", "tax_rate_override",
                 "lifetime_revenue", "outstanding_balance"}


def _out_type(name: str, annotation: Any) -> Any:
    if name in _MONEY_FIELDS:
        return str | None if type(None) in get_args(annotation) else str
    return annotation


ClientOut = create_model(
    "Client",
    **{name: (_out_type(name, f.annotation), ...) for name, f in dc.Client.model_fields.items() if not f.exclude},
    at_risk=(bool, ...),
)


IF_MATCH = re.compile(r'^(?:W/)?("?)([0-9]{1,15})\1$')  # the version number, plain or quoted (an ETag, weak too)


def if_match_version(header: str | None) -> int | None:
    """The version an `If-Match` header names (None without one); anything else is 400 `bad_request`."""
    if header is None:
        return None
    found = IF_MATCH.fullmatch(header.strip())
    if found is None:
        raise BadRequest("If-Match must be the version number, plain or quoted",
                         [{"field": "If-Match", "message": "must be an integer version, e.g. 3 or \"3\""}])
    return int(found.group(2))


def comma_list(allowed: tuple[str, ...]):
    def parse(v: str | None) -> list[str] | None:
        if v is None or isinstance(v, list):
            return v
        items = [p.strip() for p in v.split(",") if p.strip()]
        bad = [p for p in items if p not in allowed]
        if bad or not items:
            raise ValueError(f"must be a comma list of {', '.join(allowed)}")
        return items
    return parse


class ListQuery(Query):
    limit: Annotated[int, Field(ge=1, le=100)] = 25
    cursor: str | None = None


class ClientFilters(Query):
    """The client list's filters and sort (GET /v1/clients without paging; the export takes exactly these)."""

    status: list[dc.ClientStatus] | None = Field(None, description="comma list")
    type: list[dc.ClientType] | None = Field(None, description="comma list")
    pricing_tier: list[dc.PricingTier] | None = Field(None, description="comma list")
    risk_level: list[dc.RiskLevel] | None = Field(None, description="comma list")
    category_id: Id | None = None
    tag: Tag | None = None
    segment_id: Id | None = None
    chip: Literal[dc.CHIPS] | None = None  # type: ignore[valid-type]
    q: _text(200) | None = None
    sort: Literal["name", "-name", "created_at", "-created_at", "health_score", "-health_score"] = "name"

    _status = field_validator("status", mode="before")(comma_list(get_args(dc.ClientStatus)))
    _type = field_validator("type", mode="before")(comma_list(get_args(dc.ClientType)))
    _tier = field_validator("pricing_tier", mode="before")(comma_list(get_args(dc.PricingTier)))
    _risk = field_validator("risk_level", mode="before")(comma_list(get_args(dc.RiskLevel)))


class ClientListQuery(ClientFilters, ListQuery):
    pass


def page_of(item: type[BaseModel]) -> type[BaseModel]:
    return create_model(f"{item.__name__}Page", items=(list[item], ...), next_cursor=(str | None, None))


class Chips(BaseModel):
    all: int
    vip: int
    high_value: int
    at_risk: int
    new: int
    inactive: int


class Health(BaseModel):
    status: Literal["ok"]


class ContactCreate(Strict):
    full_name: _text(200, 1)
    first_name: _text(100) | None = None
    last_name: _text(100) | None = None
    email: Email
    phone: _text(50) | None = None
    mobile: _text(50) | None = None
    job_title: _text(100) | None = None
    position: _text(100) | None = None
    department: _text(100) | None = None
    notes: _text(5000) | None = None
    is_primary: bool = False
    is_billing_contact: bool = False
    is_technical_contact: bool = False


ContactUpdate = patch_of("ContactUpdate", ContactCreate, not_null=dk.NOT_NULL)

CONTACT_READ_ONLY = frozenset({
    "id", "contact_number", "client_id", "portal_access", "portal_invited_at", "synced_from_node", "node_user_id",
    "last_synced_at", "badges", "version", "created_at", "updated_at",
})

ContactOut = out_model(
    "Contact", dk.Contact,
    badges=(list[Literal["primary", "node_user", "portal", "billing", "technical"]], ...),
)


class ContactListQuery(ListQuery):
    q: _text(200) | None = None


class PortalAccessIn(Strict):
    enabled: bool


HHMM = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class CommunicationFields(Strict):
    direction: dm.Direction | None = None
    subject: _text(255) | None = None
    body: _text(100_000) | None = None
    from_email: Email | None = None
    to_email: Email | None = None
    cc: Annotated[list[Email], Field(max_length=50)] | None = None
    bcc: Annotated[list[Email], Field(max_length=50)] | None = None
    integration_id: _text(100) | None = None
    from_phone: _text(50) | None = None
    to_phone: _text(50) | None = None
    duration_minutes: Annotated[int, Field(ge=0, le=24 * 60)] | None = None
    outcome: _text(100) | None = None
    requires_followup: bool | None = None
    followup_date: Date | None = None
    followup_notes: _text(2000) | None = None
    meeting_date: Date | None = None
    start_time: HHMM | None = None
    end_time: HHMM | None = None
    location_type: Literal["in_person", "video", "phone"] | None = None
    location: _text(255) | None = None
    attendees: Annotated[list[_text(200, 1)], Field(max_length=100)] | None = None
    action_items: Annotated[list[_text(500, 1)], Field(max_length=100)] | None = None
    project_id: Id | None = None
    client_contact_id: Id | None = None
    thread_id: Id | None = None


class CommunicationCreate(CommunicationFields):
    type: dm.CommType
    send_now: bool = True
    occurred_at: Annotated[Timestamp, AfterValidator(_since_epoch)] | None = None  # its ULID id starts in 1970


class _CommunicationChange(CommunicationFields):
    status: dm.Status | None = None


# Null clears what a communication may hold empty; the rest (direction, lists, flags, status) refuse it.
CommunicationUpdate = patch_of("CommunicationUpdate", _CommunicationChange, not_null=tuple(
    n for n, f in dm.Communication.model_fields.items()
    if n in _CommunicationChange.model_fields and not _nullable(f.annotation)))


COMMUNICATION_READ_ONLY = frozenset({
    "id", "client_id", "status", "message_id", "attachments", "sent_at", "delivered_at", "read_at",
    "response_time_minutes", "created_by", "created_at", "updated_at",
})

CommunicationOut = out_model("Communication", dm.Communication)


class CommunicationListQuery(ListQuery):
    type: list[dm.CommType] | None = Field(None, description="comma list")
    contact_id: Id | None = None
    project_id: Id | None = None
    thread_id: Id | None = None
    from_: Date | None = Field(None, alias="from")
    to: Date | None = None
    q: _text(200) | None = None

    _type = field_validator("type", mode="before")(comma_list(get_args(dm.CommType)))


class FollowUpQuery(ListQuery):
    due_before: Date | None = None


class ThreadCreate(Strict):
    subject: _text(255, 1)
    type: Literal["general", "email", "sms", "chat", "meeting"] = "general"


class ThreadUpdate(Strict):
    subject: _text(255, 1) | None = None
    status: Literal["active", "archived"] | None = None


THREAD_READ_ONLY = frozenset({"id", "client_id", "icon", "messages_count", "last_activity_at", "preview",
                              "created_by", "created_by_name", "created_at", "updated_at"})

ThreadOut = out_model("Thread", dth.Thread, icon=(str, ...))


class UnmatchedOut(BaseModel):
    id: str
    received_at: AwareDatetime
    from_email: str
    to_email: str | None = None
    subject: str | None = None
    body_preview: str | None = None


class AssignIn(Strict):
    client_id: Id


Color = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")]
Icon = Annotated[str, StringConstraints(pattern=r"^mdi-[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)]


class CategoryCreate(Strict):
    name: _text(100, 1)
    description: _text(1000) | None = None
    color: Color | None = None
    icon: Icon | None = None
    parent_id: Id | None = None
    is_system: bool = False
    is_active: bool = True
    is_public: bool = True
    sort_order: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] = 0


CategoryUpdate = patch_of("CategoryUpdate", CategoryCreate, not_null=category_cases.NOT_NULL, skip=("is_system",))

CATEGORY_READ_ONLY = frozenset({"id", "slug", "is_system", "clients_count", "full_path", "depth", "has_children",
                                "is_leaf", "created_by", "created_at", "updated_at"})

CategoryOut = out_model(
    "Category", dca.Category,
    full_path=(str, ...), depth=(int, ...), has_children=(bool, ...), is_leaf=(bool, ...),
)


class CategoryListQuery(ListQuery):
    scope: Literal["active", "system", "custom", "top_level"] | None = None


class SegmentCreate(Strict):
    name: _text(100, 1)
    description: _text(1000) | None = None
    type: dsg.SegmentType
    criteria: dict[str, Any] | None = Field(None, description=(
        '{"match": "all"|"any", "conditions": [{"field", "operator", "value"}]}; checked against the client '
        "fields, the operators and the tenant's custom fields, each bad part named in the 422"))
    color: Color | None = None
    icon: Icon | None = None
    is_system: bool = False
    is_active: bool = True
    is_public: bool = True
    refresh_frequency: dsg.Frequency = "daily"


SegmentUpdate = patch_of("SegmentUpdate", SegmentCreate, not_null=segment_cases.NOT_NULL, skip=("is_system", "type"))

SEGMENT_READ_ONLY = frozenset({"id", "slug", "type", "is_system", "client_count", "last_refreshed_at",
                               "needs_refresh", "created_by", "created_at", "updated_at"})

SegmentOut = out_model("Segment", dsg.Segment, needs_refresh=(bool, ...))


class DuplicateIn(Strict):
    name: _text(100, 1)


class MemberIn(Strict):
    client_id: Id


MemberOut = out_model("Member", dsg.Member)
