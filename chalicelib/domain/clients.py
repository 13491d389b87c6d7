"""The client record and its rules: numbers, defaults from settings, pricing tiers, archive and restore, facets."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, get_args

from pydantic import Field

from chalicelib.domain import duplicates, search
from chalicelib.domain.errors import Conflict, ValidationFailed, VersionConflict
from chalicelib.domain.settings import ClientSettings, CustomFieldDef, validate_custom_fields
from chalicelib.domain.values import Model, Record, money

ClientType = Literal["company", "individual", "venue"]
ClientStatus = Literal["lead", "trial", "active", "inactive", "archived"]
PricingTier = Literal["standard", "preferred", "vip", "custom"]
RiskLevel = Literal["low", "medium", "high"]
CommunicationPreference = Literal["email", "phone", "sms", "post"]
AddressKind = Literal["visiting", "billing", "delivery", "shipping"]
Facet = tuple[str, str]  # a list facet: ("status", "active"), ("tag", "vip"), ("live", "1")...
LookupKey = tuple[str, str]  # what an import finds a live client by: ("email", address), ("vat", number)

NEW_CLIENT_HEALTH = 70
AT_RISK_CHURN = Decimal("0.7")
STANDARD_MULTIPLIER = Decimal("1.00")


class Address(Model):
    kind: AddressKind
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


class PrimaryContact(Model):
    id: str
    full_name: str
    email: str | None = None
    phone: str | None = None


class Client(Record):
    """A client as stored and as answered (internal fields are excluded from answers)."""

    id: str
    tenant_id: str = Field(exclude=True)
    client_number: str
    type: ClientType = "company"
    name: str
    status: ClientStatus = "active"
    status_before_archive: ClientStatus | None = Field(default=None, exclude=True)
    email: str | None = None
    phone: str | None = None
    fax: str | None = None
    website: str | None = None
    industry: str | None = None
    registration_number: str | None = None
    vat_number: str | None = None
    addresses: list[Address] = Field(default_factory=list)
    pricing_tier: PricingTier = "standard"
    price_multiplier: Decimal = STANDARD_MULTIPLIER
    currency: str = "EUR"
    credit_limit: Decimal | None = None
    payment_terms_days: int = 30
    discount_percent: Decimal | None = None
    tax_exempt: bool = False
    tax_rate_override: Decimal | None = None
    communication_preference: CommunicationPreference = "email"
    tags: list[str] = Field(default_factory=list)
    category_ids: list[str] = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    pipeline_stage: str | None = None
    node_client_id: str | None = None
    node_url: str | None = None
    primary_contact: PrimaryContact | None = None
    billing_contact_id: str | None = Field(default=None, exclude=True)
    health_score: int = NEW_CLIENT_HEALTH
    risk_level: RiskLevel = "low"
    churn_probability: float = 0.0
    lead_classification: str | None = None
    lifetime_revenue: Decimal = Decimal("0.00")
    outstanding_balance: Decimal = Decimal("0.00")
    projects_count: int = 0
    last_project_at: datetime | None = None
    last_contacted_at: datetime | None = None
    avg_response_time_minutes: int | None = None
    version: int = 0
    rev: int = Field(default=0, exclude=True)  # storage revision, bumped by derived-figure writes too
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None
    created_by: str | None = None
    updated_by: str | None = Field(default=None, exclude=True)  # who made the last change (the timeline's actor)
    import_id: str | None = None  # the import that created the client (read-only; revert undoes only those)

    @property
    def at_risk(self) -> bool:
        return Decimal(str(self.churn_probability)) > AT_RISK_CHURN

    @property
    def is_archived(self) -> bool:
        return self.status == "archived"

    def public(self) -> dict[str, Any]:
        """The JSON answer: money as decimal strings, timestamps with Z, plus derived `at_risk`."""
        data = super().public()
        for key in ("price_multiplier", "credit_limit", "discount_percent", "tax_rate_override",
                    "lifetime_revenue", "outstanding_balance"):
            if data[key] is not None:
                data[key] = money(getattr(self, key))
        data["at_risk"] = self.at_risk
        return data


class NumberTaken(VersionConflict):
    """Raised by a repository when a generated number exists already: drawn again, like any lost race."""


def generate_number(prefix: str, now: datetime) -> str:
    """`CLT-YYYY-HHMMSSXXXX`: year, time of day and four random lowercase hex digits."""
    return f"{prefix}-{now:%Y}-{now:%H%M%S}{secrets.token_hex(2)}"


def name_key(name: str) -> str:
    """Case-insensitive sort key of a name."""
    return name.casefold()[:200]


def multiplier_for(tier: str, settings: ClientSettings, given: Decimal | None) -> Decimal:
    """The price multiplier a tier implies; only the custom tier takes one from the request."""
    if tier == "custom":
        if given is None:
            raise ValidationFailed.field("price_multiplier", "is required for the custom pricing tier")
        return given
    if given is not None:
        raise ValidationFailed.field("price_multiplier", "can only be set for the custom pricing tier")
    if tier == "standard":
        return STANDARD_MULTIPLIER
    return getattr(settings.tier_multipliers, tier)


def new_client(data: dict[str, Any], *, tenant_id: str, client_id: str, settings: ClientSettings,
               custom_fields: list[CustomFieldDef], actor: str | None, now: datetime) -> Client:
    """Build a client from validated create fields, filling defaults from the tenant's settings."""
    data = dict(data)
    tier = data.get("pricing_tier") or "standard"
    data["price_multiplier"] = multiplier_for(tier, settings, data.pop("price_multiplier", None))
    data.setdefault("currency", settings.default_currency)
    data.setdefault("payment_terms_days", settings.default_payment_terms_days)
    data.setdefault("tax_rate_override", settings.default_tax_rate)
    data["custom_fields"] = validate_custom_fields(data.get("custom_fields") or {}, custom_fields, creating=True)
    return Client(
        **{k: v for k, v in data.items() if v is not None},
        id=client_id, tenant_id=tenant_id, client_number=generate_number("CLT", now),
        created_at=now, updated_at=now, created_by=actor, version=1,
    )


NOT_NULL = ("name", "type", "status", "pricing_tier", "currency", "payment_terms_days", "tax_exempt",
            "communication_preference")


def apply_changes(client: Client, changes: dict[str, Any], *, settings: ClientSettings,
                  custom_fields: list[CustomFieldDef], now: datetime) -> Client:
    """Apply the named fields of a PATCH; the pricing tier decides the multiplier."""
    changes = dict(changes)
    for key in NOT_NULL:
        if key in changes and changes[key] is None:
            raise ValidationFailed.field(key, "may not be null")
    if changes.get("status") == "archived" or (client.is_archived and "status" in changes):
        raise Conflict("conflict", "archive and restore clients with their own endpoints")
    if "pricing_tier" in changes or "price_multiplier" in changes:
        tier = changes.get("pricing_tier", client.pricing_tier)
        given = changes.pop("price_multiplier", None)
        if tier == "custom" and given is None and client.pricing_tier == "custom":
            given = client.price_multiplier
        changes["price_multiplier"] = multiplier_for(tier, settings, given)
    if "custom_fields" in changes:
        # Only the keys sent are checked (null removes a value, except a required one); the rest stay as stored.
        sent = changes["custom_fields"]
        sent = dict.fromkeys(client.custom_fields) if sent is None else sent
        validate_custom_fields(sent, custom_fields, creating=False)
        merged = {**client.custom_fields, **sent}
        changes["custom_fields"] = {k: v for k, v in merged.items() if v is not None}
    for key in ("tags", "category_ids", "addresses"):
        if key in changes and changes[key] is None:
            changes[key] = []
    return client.model_copy(update={**_revalidated(changes), "updated_at": now})


def _revalidated(changes: dict[str, Any]) -> dict[str, Any]:
    """Coerce nested values (addresses) to their domain types before model_copy, which does not validate."""
    if changes.get("addresses"):
        changes["addresses"] = [Address.model_validate(a if isinstance(a, dict) else a.model_dump())
                                for a in changes["addresses"]]
    return changes


def archive(client: Client, now: datetime) -> Client:
    if client.is_archived:
        return client
    return client.model_copy(update={"status": "archived", "status_before_archive": client.status,
                                     "archived_at": now, "updated_at": now})


def restore(client: Client, now: datetime) -> Client:
    if not client.is_archived:
        return client
    return client.model_copy(update={"status": client.status_before_archive or "active",
                                     "status_before_archive": None, "archived_at": None, "updated_at": now})


@dataclass(frozen=True)
class FacetRules:
    """The tenant settings facets depend on: what counts as high value and as new."""

    high_value_threshold: Decimal
    new_since: datetime

    @classmethod
    def of(cls, settings: ClientSettings, now: datetime) -> FacetRules:
        return cls(settings.high_value_threshold, new_client_cutoff(settings, now))


def facets(client: Client, rules: FacetRules) -> set[Facet]:
    """The list facets a client belongs to; each is a partition the list and chips read by key."""
    out: set[Facet] = {("status", client.status), ("type", client.type), ("tier", client.pricing_tier),
           ("risk", client.risk_level)}
    out |= {("tag", t.casefold()) for t in client.tags}
    out |= {("category", c) for c in client.category_ids}
    if not client.is_archived:
        out.add(("live", "1"))
    if client.at_risk:
        out.add(("atrisk", "1"))
    if client.lifetime_revenue >= rules.high_value_threshold:
        out.add(("highvalue", "1"))
    if client.created_at >= rules.new_since:
        out.add(("new", "1"))  # pruned by the daily schedule; reads confirm created_at, so never stale
    return out


COUNTED_FACETS = frozenset({"live", "status", "type", "tier", "risk", "atrisk", "highvalue"})

LOOKUP_NAMES = {"email": "email", "vat_number": "vat"}  # duplicate keys of an import -> lookup key names


def lookup_keys(client: Client) -> set[LookupKey]:
    """The keys a live client is found by when a create or an import looks for duplicates: exactly by
    ("email", normalised address) and ("vat", normalised VAT number), likely by ("name", normalised name and
    country) and ("domain", its email's domain unless free mail). Archived clients hold none."""
    if client.is_archived:
        return set()
    from chalicelib.domain.client_import import duplicate_keys  # it builds on client_csv, which imports this module

    found = {(LOOKUP_NAMES[name], value)
             for name, value in duplicate_keys({"email": client.email, "vat_number": client.vat_number})}
    country = next((a.country for a in client.addresses if a.country), None)
    if named := duplicates.name_key(client.name, country):
        found.add(("name", named))
    if domain := duplicates.email_domain(client.email):
        found.add(("domain", domain))
    return found


def search_text(client: Client) -> str:
    """What `q` matches: name, client number, email and primary contact name, case and accents folded."""
    return search.search_text([client.name, client.client_number, client.email,
                               client.primary_contact.full_name if client.primary_contact else None])


Chip = Literal["all", "vip", "high_value", "at_risk", "new", "inactive"]  # the list's quick filters
CHIPS: tuple[str, ...] = get_args(Chip)
CHIP_FACETS: dict[str, Facet] = {"all": ("live", "1"), "vip": ("tier", "vip"), "high_value": ("highvalue", "1"),
               "at_risk": ("atrisk", "1"), "new": ("new", "1"), "inactive": ("status", "inactive")}


def new_client_cutoff(settings: ClientSettings, now: datetime) -> datetime:
    """Clients created since the start of the UTC day `new_client_days` ago are new: whole days, so the chip is
    a sum of per-day counters."""
    return (now - timedelta(days=settings.new_client_days)).replace(hour=0, minute=0, second=0, microsecond=0)


def created_day(client: Client) -> str:
    """The UTC day a client was created on (`YYYY-MM-DD`): its per-day creation counter."""
    return f"{client.created_at.astimezone(UTC):%Y-%m-%d}"


def chip_counts(counts: dict[Facet, int], new_count: int) -> dict[str, int]:
    """The chips' answer from the counters of their facets and the count of clients created lately."""
    return {"all": counts[("live", "1")], "vip": counts[("tier", "vip")],
            "high_value": counts[("highvalue", "1")], "at_risk": counts[("atrisk", "1")],
            "new": new_count, "inactive": counts[("status", "inactive")]}


@dataclass(frozen=True)
class ListPlan:
    """Which facet partitions answer a list (a union per group; every group must hold), its order, and the checks
    the facets cannot make by key."""

    groups: list[list[Facet]]
    sort: str = "name"
    descending: bool = False
    q: str | None = None
    created_since: datetime | None = None
    revenue_at_least: Decimal | None = None

    @property
    def counted(self) -> list[Facet]:
        """The facets of the plan that have counters: the smallest group drives the read."""
        return [f for group in self.groups for f in group if f[0] in COUNTED_FACETS]

    def passes(self, client: Client) -> bool:
        """Checks the facets cannot make by key: time- and threshold-dependent chips."""
        if self.created_since and client.created_at < self.created_since:
            return False
        if self.revenue_at_least is not None and client.lifetime_revenue < self.revenue_at_least:
            return False
        return True


SETTINGS_CHIPS = frozenset({"new", "high_value"})  # the chips whose meaning depends on the tenant's settings


def plan_list(filters: dict[str, Any], settings: ClientSettings | None, now: datetime) -> ListPlan:
    """Turn list filters into facet groups; archived clients are left out unless a status asks for them. The
    settings are needed (and read) only for the chips of SETTINGS_CHIPS."""
    groups: list[list[Facet]] = []
    statuses = filters.get("status")
    groups.append([("status", s) for s in statuses] if statuses else [("live", "1")])
    for param, facet in (("type", "type"), ("pricing_tier", "tier"), ("risk_level", "risk")):
        if filters.get(param):
            groups.append([(facet, v) for v in filters[param]])
    if filters.get("tag"):
        groups.append([("tag", filters["tag"].casefold())])
    if filters.get("category_ids"):
        groups.append([("category", c) for c in filters["category_ids"]])
    if filters.get("segment_id"):
        groups.append([("segment", filters["segment_id"])])
    chip = filters.get("chip")
    if chip and chip != "all":
        groups.append([CHIP_FACETS[chip]])
    sort = filters.get("sort") or "name"
    if chip in SETTINGS_CHIPS and settings is None:
        raise ValueError(f"chip {chip} needs the tenant's client settings")
    return ListPlan(
        groups=groups, sort=sort.lstrip("-"), descending=sort.startswith("-"), q=filters.get("q"),
        created_since=new_client_cutoff(settings, now) if settings and chip == "new" else None,
        revenue_at_least=settings.high_value_threshold if settings and chip == "high_value" else None,
    )


@dataclass
class Created:
    """What a batch create wrote: the clients created, and those refused (an earlier run wrote them, or a live
    client holds one of their lookup keys)."""

    clients: list[Client] = field(default_factory=list)
    refused: list[Client] = field(default_factory=list)
