"""Pure client rules: numbers, defaults from settings, pricing tiers, custom fields, archive/restore, facets."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib.domain import client_cases as cases
from chalicelib.domain import clients as dc
from chalicelib.domain import retry
from chalicelib.domain.errors import Conflict, Unavailable, ValidationFailed
from chalicelib.domain.settings import (
    SETTINGS_MODELS,
    ClientSettings,
    CustomFieldDef,
    TierMultipliers,
    validate_custom_fields,
)

NOW = datetime(2025, 3, 4, 13, 45, 1, 123000, tzinfo=UTC)
NUMBER = re.compile(r"^CLT-(\d{4})-(\d{6})([0-9a-f]{4})$")


def make(data=None, *, settings=None, defs=(), now=NOW, client_id="01JCLIENT") -> dc.Client:
    return dc.new_client({"name": "Acme", **(data or {})}, tenant_id="t1", client_id=client_id,
                         settings=settings or ClientSettings(), custom_fields=list(defs), actor="user-1", now=now)


def fields_of(exc: ValidationFailed) -> list[str]:
    return [d["field"] for d in exc.details]


# --- numbers ---------------------------------------------------------------------------------------

def test_client_number_is_year_time_of_day_and_four_lowercase_hex():
    number = dc.generate_number("CLT", NOW)
    match = NUMBER.match(number)
    assert match, number
    assert match.group(1) == "2025"
    assert match.group(2) == "134501"


def test_client_numbers_drawn_in_the_same_second_differ():
    numbers = {dc.generate_number("CLT", NOW) for _ in range(200)}
    assert len(numbers) > 190  # four random hex digits: collisions are rare and resolved by the store


def test_new_client_number_matches_its_creation_time():
    client = make()
    assert NUMBER.match(client.client_number)
    assert client.client_number.startswith("CLT-2025-134501")
    assert client.created_at == client.updated_at == NOW


class _NumbersTakenOnce:
    """A store whose first create hits a taken number."""

    def __init__(self, fail_times: int):
        self.fail_times = fail_times
        self.numbers: list[str] = []

    def create(self, client, rules):
        self.numbers.append(client.client_number)
        if len(self.numbers) <= self.fail_times:
            raise dc.NumberTaken(client.client_number)
        return client.model_copy(update={"version": 1})


class _Settings:
    def get(self, name):
        return SETTINGS_MODELS[name]()  # every resource at its defaults

    def custom_fields(self):
        return []


class _Stores:
    """The stores create_client reads: a tenant's clients and its settings at their defaults."""

    def __init__(self, clients, tenant_id="t1", actor=None):
        self.clients, self.settings, self.categories = clients, _Settings(), None
        self.tenant_id, self.actor = tenant_id, actor


def test_a_taken_number_is_drawn_again():
    store = _NumbersTakenOnce(fail_times=2)
    client = cases.create_client(_Stores(store), {"name": "Acme"}, now=NOW)
    assert client.version == 1
    assert len(store.numbers) == 3
    assert client.client_number == store.numbers[-1]


def test_numbers_that_stay_taken_give_unavailable_not_a_duplicate(monkeypatch):
    monkeypatch.setattr(retry, "MAX_BUDGET", 0.2)  # the retry gives up after its time budget
    store = _NumbersTakenOnce(fail_times=10_000)
    with pytest.raises(Unavailable, match="nothing was written"):
        cases.create_client(_Stores(store), {"name": "Acme"}, now=NOW)
    assert len(store.numbers) > 3


# --- defaults ----------------------------------------------------------------------------------------

def test_new_client_gets_the_contract_defaults():
    client = make()
    assert (client.type, client.status, client.pricing_tier) == ("company", "active", "standard")
    assert client.price_multiplier == Decimal("1.00")
    assert (client.health_score, client.risk_level, client.at_risk) == (70, "low", False)
    assert client.communication_preference == "email"
    assert client.lifetime_revenue == client.outstanding_balance == Decimal("0")
    assert client.created_by == "user-1"


def test_tenant_settings_fill_currency_terms_and_tax_rate():
    settings = ClientSettings(default_currency="USD", default_payment_terms_days=14,
                              default_tax_rate=Decimal("21.00"))
    client = make(settings=settings)
    assert (client.currency, client.payment_terms_days, client.tax_rate_override) == ("USD", 14, Decimal("21.00"))


def test_values_given_on_create_win_over_settings_defaults():
    settings = ClientSettings(default_currency="USD", default_payment_terms_days=14)
    client = make({"currency": "GBP", "payment_terms_days": 60, "tax_rate_override": Decimal("5.00")},
                  settings=settings)
    assert (client.currency, client.payment_terms_days, client.tax_rate_override) == ("GBP", 60, Decimal("5.00"))


def test_settings_defaults_are_those_of_the_contract():
    s = ClientSettings()
    assert s.default_currency == "EUR" and s.default_payment_terms_days == 30
    assert s.default_tax_rate == Decimal("0.00") and s.high_value_threshold == Decimal("10000.00")
    assert s.tier_multipliers == TierMultipliers(preferred=Decimal("0.95"), vip=Decimal("0.90"))
    assert s.new_client_days == 30


# --- pricing tiers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("tier,expected", [("standard", "1.00"), ("preferred", "0.95"), ("vip", "0.90")])
def test_tier_multiplier_comes_from_the_tier_and_settings(tier, expected):
    assert make({"pricing_tier": tier}).price_multiplier == Decimal(expected)


def test_preferred_and_vip_multipliers_follow_tenant_settings():
    settings = ClientSettings(tier_multipliers=TierMultipliers(preferred=Decimal("0.80"), vip=Decimal("0.70")))
    assert make({"pricing_tier": "preferred"}, settings=settings).price_multiplier == Decimal("0.80")
    assert make({"pricing_tier": "vip"}, settings=settings).price_multiplier == Decimal("0.70")


def test_custom_tier_requires_a_price_multiplier():
    with pytest.raises(ValidationFailed) as caught:
        make({"pricing_tier": "custom"})
    assert fields_of(caught.value) == ["price_multiplier"]


def test_custom_tier_keeps_the_given_multiplier():
    assert make({"pricing_tier": "custom", "price_multiplier": Decimal("1.15")}).price_multiplier == Decimal("1.15")


@pytest.mark.parametrize("tier", ["standard", "preferred", "vip"])
def test_only_the_custom_tier_takes_a_multiplier(tier):
    with pytest.raises(ValidationFailed) as caught:
        make({"pricing_tier": tier, "price_multiplier": Decimal("1.15")})
    assert fields_of(caught.value) == ["price_multiplier"]


def test_changing_tier_recomputes_the_multiplier():
    client = make()
    vip = dc.apply_changes(client, {"pricing_tier": "vip"}, settings=ClientSettings(), custom_fields=[], now=NOW)
    assert vip.price_multiplier == Decimal("0.90")
    back = dc.apply_changes(vip, {"pricing_tier": "standard"}, settings=ClientSettings(), custom_fields=[], now=NOW)
    assert back.price_multiplier == Decimal("1.00")


def test_custom_client_keeps_its_multiplier_when_the_tier_is_sent_again():
    client = make({"pricing_tier": "custom", "price_multiplier": Decimal("1.20")})
    same = dc.apply_changes(client, {"pricing_tier": "custom"}, settings=ClientSettings(), custom_fields=[], now=NOW)
    assert same.price_multiplier == Decimal("1.20")


def test_moving_to_custom_without_a_multiplier_is_refused():
    with pytest.raises(ValidationFailed):
        dc.apply_changes(make(), {"pricing_tier": "custom"}, settings=ClientSettings(), custom_fields=[], now=NOW)


def test_null_pricing_tier_is_a_validation_error():
    with pytest.raises(ValidationFailed):
        dc.apply_changes(make(), {"pricing_tier": None}, settings=ClientSettings(), custom_fields=[], now=NOW)


def test_null_status_is_a_validation_error():
    with pytest.raises(ValidationFailed):
        dc.apply_changes(make(), {"status": None}, settings=ClientSettings(), custom_fields=[], now=NOW)


@pytest.mark.parametrize("field", ["name", "type", "currency", "payment_terms_days", "tax_exempt",
                                   "communication_preference"])
def test_required_fields_cannot_be_patched_to_null(field):
    with pytest.raises(ValidationFailed) as caught:
        dc.apply_changes(make(), {field: None}, settings=ClientSettings(), custom_fields=[], now=NOW)
    assert fields_of(caught.value) == [field]


def test_patch_changes_only_the_named_fields_and_stamps_updated_at():
    client = make({"email": "a@acme.test", "tags": ["gold"]})
    later = NOW + timedelta(minutes=5)
    changed = dc.apply_changes(client, {"phone": "+3212"}, settings=ClientSettings(), custom_fields=[], now=later)
    assert changed.phone == "+3212" and changed.email == "a@acme.test" and changed.tags == ["gold"]
    assert changed.updated_at == later and changed.created_at == NOW
    assert changed.client_number == client.client_number


# --- custom fields -----------------------------------------------------------------------------------

DEFS = [
    CustomFieldDef(key="seats", label="Seats", type="number"),
    CustomFieldDef(key="note", label="Note", type="text"),
    CustomFieldDef(key="since", label="Since", type="date"),
    CustomFieldDef(key="vip_lounge", label="Lounge", type="boolean"),
    CustomFieldDef(key="size", label="Size", type="select", options=["s", "m", "l"]),
]


def test_defined_custom_fields_of_the_right_type_are_kept():
    values = {"seats": 12, "note": "hi", "since": "2024-02-29", "vip_lounge": True, "size": "m"}
    assert validate_custom_fields(values, DEFS, creating=True) == values


def test_unknown_custom_field_is_named_in_the_error():
    with pytest.raises(ValidationFailed) as caught:
        validate_custom_fields({"shoe": 42}, DEFS, creating=True)
    assert fields_of(caught.value) == ["custom_fields.shoe"]


@pytest.mark.parametrize("key,value", [
    ("seats", "twelve"), ("seats", True), ("seats", [1]),
    ("seats", "NaN"), ("seats", "Infinity"),
    ("note", 5), ("note", "x" * 1001),
    ("since", "2024-13-01"), ("since", "tomorrow"), ("since", 20240101),
    ("since", "20240101"), ("since", "2024-W01-1"), ("since", "2024-02-30"),
    ("vip_lounge", "yes"), ("vip_lounge", 1),
    ("size", "xl"), ("size", "M"),
])
def test_custom_field_of_the_wrong_type_is_refused(key, value):
    with pytest.raises(ValidationFailed) as caught:
        validate_custom_fields({key: value}, DEFS, creating=True)
    assert fields_of(caught.value) == [f"custom_fields.{key}"]


def test_required_custom_field_is_needed_on_create_only():
    defs = [*DEFS, CustomFieldDef(key="region", label="Region", type="text", required=True)]
    with pytest.raises(ValidationFailed) as caught:
        make(defs=defs)
    assert fields_of(caught.value) == ["custom_fields.region"]
    client = make({"custom_fields": {"region": "north"}}, defs=defs)
    assert client.custom_fields == {"region": "north"}


def test_patching_custom_fields_merges_with_the_stored_ones_and_null_removes_a_key():
    client = make({"custom_fields": {"seats": 3, "note": "x"}}, defs=DEFS)
    changed = dc.apply_changes(client, {"custom_fields": {"seats": 4, "note": None, "size": "s"}},
                               settings=ClientSettings(), custom_fields=DEFS, now=NOW)
    assert changed.custom_fields == {"seats": 4, "size": "s"}


def test_patching_an_unknown_custom_field_is_refused():
    with pytest.raises(ValidationFailed) as caught:
        dc.apply_changes(make(), {"custom_fields": {"shoe": 1}}, settings=ClientSettings(), custom_fields=DEFS,
                         now=NOW)
    assert fields_of(caught.value) == ["custom_fields.shoe"]


def test_custom_field_definitions_check_their_own_shape():
    with pytest.raises(ValueError):
        CustomFieldDef(key="Bad Key", label="x", type="text")
    with pytest.raises(ValueError):
        CustomFieldDef(key="size", label="x", type="select")
    with pytest.raises(ValueError):
        CustomFieldDef(key="note", label="x", type="text", options=["a"])


# --- archive and restore -----------------------------------------------------------------------------

@pytest.mark.parametrize("status", ["lead", "trial", "active", "inactive"])
def test_restore_brings_back_the_status_held_before_archive(status):
    client = make({"status": status})
    archived = dc.archive(client, NOW + timedelta(hours=1))
    assert archived.status == "archived" and archived.archived_at == NOW + timedelta(hours=1)
    restored = dc.restore(archived, NOW + timedelta(hours=2))
    assert restored.status == status
    assert restored.archived_at is None and restored.updated_at == NOW + timedelta(hours=2)


def test_archiving_twice_keeps_the_first_archive_and_the_prior_status():
    archived = dc.archive(make({"status": "trial"}), NOW)
    again = dc.archive(archived, NOW + timedelta(days=1))
    assert again.archived_at == NOW
    assert dc.restore(again, NOW).status == "trial"


def test_restoring_a_client_that_is_not_archived_changes_nothing():
    client = make({"status": "inactive"})
    assert dc.restore(client, NOW + timedelta(days=1)) is client


def test_status_cannot_be_patched_to_or_from_archived():
    with pytest.raises(Conflict):
        dc.apply_changes(make(), {"status": "archived"}, settings=ClientSettings(), custom_fields=[], now=NOW)
    with pytest.raises(Conflict):
        dc.apply_changes(dc.archive(make(), NOW), {"status": "active"}, settings=ClientSettings(),
                         custom_fields=[], now=NOW)


# --- facets, search and answers ----------------------------------------------------------------------

RULES = dc.FacetRules(high_value_threshold=Decimal("10000.00"), new_since=NOW - timedelta(days=30))


def test_a_live_client_is_in_its_status_type_tier_risk_tag_and_new_facets():
    client = make({"type": "venue", "pricing_tier": "vip", "tags": ["Gold", "north"], "category_ids": ["c1"]})
    assert dc.facets(client, RULES) == {
        ("status", "active"), ("type", "venue"), ("tier", "vip"), ("risk", "low"), ("tag", "gold"),
        ("tag", "north"), ("category", "c1"), ("live", "1"), ("new", "1")}


def test_an_archived_client_leaves_the_live_facet():
    archived = dc.archive(make(), NOW)
    f = dc.facets(archived, RULES)
    assert ("live", "1") not in f and ("status", "archived") in f


def test_old_clients_are_not_new():
    old = make(now=NOW - timedelta(days=31))
    assert ("new", "1") not in dc.facets(old, RULES)


@pytest.mark.parametrize("churn,at_risk", [(0.7, False), (0.71, True), (0.2, False)])
def test_at_risk_means_churn_probability_above_point_seven(churn, at_risk):
    client = make().model_copy(update={"churn_probability": churn})
    assert client.at_risk is at_risk
    assert (("atrisk", "1") in dc.facets(client, RULES)) is at_risk


@pytest.mark.parametrize("revenue,high", [("9999.99", False), ("10000.00", True), ("25000", True)])
def test_high_value_means_lifetime_revenue_at_least_the_threshold(revenue, high):
    client = make().model_copy(update={"lifetime_revenue": Decimal(revenue)})
    assert (("highvalue", "1") in dc.facets(client, RULES)) is high


def test_search_covers_name_number_email_and_primary_contact_case_folded():
    client = make({"name": "Acme Events", "email": "Info@Acme.test"}).model_copy(
        update={"primary_contact": dc.PrimaryContact(id="c1", full_name="Jane DOE")})
    text = dc.search_text(client)
    for needle in ("acme events", client.client_number.casefold(), "info@acme.test", "jane doe"):
        assert needle in text


def test_public_answer_has_decimal_strings_z_timestamps_and_no_internal_fields():
    archived = dc.archive(make({"credit_limit": Decimal("1250"), "pricing_tier": "vip"}), NOW)
    data = archived.public()
    assert data["price_multiplier"] == "0.90" and data["credit_limit"] == "1250.00"
    assert data["lifetime_revenue"] == "0.00" and data["tax_rate_override"] == "0.00"
    assert data["created_at"] == "2025-03-04T13:45:01.123Z" and data["archived_at"].endswith("Z")
    assert data["at_risk"] is False
    assert not {"tenant_id", "status_before_archive", "billing_contact_id"} & data.keys()


def test_money_keeps_two_decimals_and_never_rounds_away_precision():
    assert dc.money(Decimal("5")) == "5.00"
    assert dc.money(Decimal("0.9")) == "0.90"
    assert dc.money(Decimal("1.2345")) == "1.2345"


# --- list plans --------------------------------------------------------------------------------------

def test_default_list_reads_only_live_clients():
    plan = dc.plan_list({}, ClientSettings(), NOW)
    assert plan.groups == [[("live", "1")]] and (plan.sort, plan.descending) == ("name", False)


def test_status_filter_replaces_the_live_default_and_may_ask_for_archived():
    plan = dc.plan_list({"status": ["inactive", "archived"]}, ClientSettings(), NOW)
    assert plan.groups == [[("status", "inactive"), ("status", "archived")]]


@pytest.mark.parametrize("chip,facet", [("vip", ("tier", "vip")), ("inactive", ("status", "inactive")),
                                        ("at_risk", ("atrisk", "1")), ("new", ("new", "1"))])
def test_chips_keep_archived_clients_out(chip, facet):
    plan = dc.plan_list({"chip": chip}, ClientSettings(), NOW)
    assert plan.groups == [[("live", "1")], [facet]]


def test_chip_all_is_the_default_list():
    assert dc.plan_list({"chip": "all"}, ClientSettings(), NOW).groups == [[("live", "1")]]


def test_new_chip_confirms_the_creation_date_on_read():
    plan = dc.plan_list({"chip": "new", "sort": "-created_at"}, ClientSettings(new_client_days=7), NOW)
    assert plan.descending and plan.sort == "created_at"
    assert plan.passes(make(now=NOW - timedelta(days=6)))
    assert not plan.passes(make(now=NOW - timedelta(days=8)))


def test_chip_counts_name_each_chip():
    counts = {("live", "1"): 9, ("tier", "vip"): 2, ("highvalue", "1"): 1, ("atrisk", "1"): 0,
              ("status", "inactive"): 3}
    assert dc.chip_counts(counts, 4) == {"all": 9, "vip": 2, "high_value": 1, "at_risk": 0, "new": 4,
                                            "inactive": 3}
