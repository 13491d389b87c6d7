"""Request and response models of the HTTP edge: unknown and read-only fields are rejected."""
# ruff: noqa: F403, F405  (transitional: the subject models move next to their blueprints)
from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, create_model, field_validator

from chalicelib.domain import categories as dca
from chalicelib.domain import category_cases, segment_cases
from chalicelib.domain import clients as dc
from chalicelib.domain import communications as dm
from chalicelib.domain import contacts as dk
from chalicelib.domain import segments as dsg
from chalicelib.domain import threads as dth
from chalicelib.handlers.fields import *  # noqa: F403


class AddressIn(Strict):
    kind: dc.AddressKind
    line1: Annotated[str, Text(200)] | None = None
    line2: Annotated[str, Text(200)] | None = None
    city: Annotated[str, Text(100)] | None = None
    region: Annotated[str, Text(100)] | None = None
    postal_code: Annotated[str, Text(20)] | None = None
    country: Country | None = None


class ClientCreate(Strict):
    type: dc.ClientType = "company"
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
    pipeline_stage: Annotated[str, Text(50)] | None = None

    _unique = field_validator("tags", "category_ids")(dedupe)


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
    q: Annotated[str, Text(200)] | None = None
    sort: Literal["name", "-name", "created_at", "-created_at", "health_score", "-health_score"] = "name"

    _status = field_validator("status", mode="before")(comma_list(get_args(dc.ClientStatus)))
    _type = field_validator("type", mode="before")(comma_list(get_args(dc.ClientType)))
    _tier = field_validator("pricing_tier", mode="before")(comma_list(get_args(dc.PricingTier)))
    _risk = field_validator("risk_level", mode="before")(comma_list(get_args(dc.RiskLevel)))


class ClientListQuery(ClientFilters, ListQuery):
    pass


class Chips(BaseModel):
    all: int
    vip: int
    high_value: int
    at_risk: int
    new: int
    inactive: int


class ContactCreate(Strict):
    full_name: Annotated[str, Text(200, 1)]
    first_name: Annotated[str, Text(100)] | None = None
    last_name: Annotated[str, Text(100)] | None = None
    email: Email
    phone: Annotated[str, Text(50)] | None = None
    mobile: Annotated[str, Text(50)] | None = None
    job_title: Annotated[str, Text(100)] | None = None
    position: Annotated[str, Text(100)] | None = None
    department: Annotated[str, Text(100)] | None = None
    notes: Annotated[str, Text(5000)] | None = None
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
    q: Annotated[str, Text(200)] | None = None


class PortalAccessIn(Strict):
    enabled: bool


class CommunicationFields(Strict):
    direction: dm.Direction | None = None
    subject: Annotated[str, Text(255)] | None = None
    body: Annotated[str, Text(100_000)] | None = None
    from_email: Email | None = None
    to_email: Email | None = None
    cc: Annotated[list[Email], Field(max_length=50)] | None = None
    bcc: Annotated[list[Email], Field(max_length=50)] | None = None
    integration_id: Annotated[str, Text(100)] | None = None
    from_phone: Annotated[str, Text(50)] | None = None
    to_phone: Annotated[str, Text(50)] | None = None
    duration_minutes: Annotated[int, Field(ge=0, le=24 * 60)] | None = None
    outcome: Annotated[str, Text(100)] | None = None
    requires_followup: bool | None = None
    followup_date: Date | None = None
    followup_notes: Annotated[str, Text(2000)] | None = None
    meeting_date: Date | None = None
    start_time: HHMM | None = None
    end_time: HHMM | None = None
    location_type: Literal["in_person", "video", "phone"] | None = None
    location: Annotated[str, Text(255)] | None = None
    attendees: Annotated[list[Annotated[str, Text(200, 1)]], Field(max_length=100)] | None = None
    action_items: Annotated[list[Annotated[str, Text(500, 1)]], Field(max_length=100)] | None = None
    project_id: Id | None = None
    client_contact_id: Id | None = None
    thread_id: Id | None = None


class CommunicationCreate(CommunicationFields):
    type: dm.CommType
    send_now: bool = True
    occurred_at: Annotated[Timestamp, AfterValidator(since_epoch)] | None = None  # its ULID id starts in 1970


class _CommunicationChange(CommunicationFields):
    status: dm.Status | None = None


# Null clears what a communication may hold empty; the rest (direction, lists, flags, status) refuse it.
CommunicationUpdate = patch_of("CommunicationUpdate", _CommunicationChange, not_null=tuple(
    n for n, f in dm.Communication.model_fields.items()
    if n in _CommunicationChange.model_fields and not nullable(f.annotation)))


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
    q: Annotated[str, Text(200)] | None = None

    _type = field_validator("type", mode="before")(comma_list(get_args(dm.CommType)))


class FollowUpQuery(ListQuery):
    due_before: Date | None = None


class ThreadCreate(Strict):
    subject: Annotated[str, Text(255, 1)]
    type: Literal["general", "email", "sms", "chat", "meeting"] = "general"


class ThreadUpdate(Strict):
    subject: Annotated[str, Text(255, 1)] | None = None
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


class CategoryCreate(Strict):
    name: Annotated[str, Text(100, 1)]
    description: Annotated[str, Text(1000)] | None = None
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
    name: Annotated[str, Text(100, 1)]
    description: Annotated[str, Text(1000)] | None = None
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
    name: Annotated[str, Text(100, 1)]


class MemberIn(Strict):
    client_id: Id


MemberOut = out_model("Member", dsg.Member)
