"""Segment criteria: which fields and operators a condition may use, value typing, and matching clients."""
from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.clients import Address, Client, PrimaryContact
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.segment_criteria import (
    OPERATORS,
    Condition,
    Criteria,
    describe_fields,
    matches,
    validate_criteria,
)
from chalicelib.domain.settings import CustomFieldDef
from chalicelib.handlers.errors import status_of

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
DEFS = [
    CustomFieldDef(key="budget", label="Budget", type="number"),
    CustomFieldDef(key="signed_on", label="Signed on", type="date"),
    CustomFieldDef(key="level", label="Level", type="select", options=["Gold", "Silver"]),
    CustomFieldDef(key="newsletter", label="Newsletter", type="boolean"),
    CustomFieldDef(key="notes", label="Notes", type="text"),
]
ABSENT = object()


def client(**fields) -> Client:
    base = {"id": "c1", "tenant_id": "t1", "client_number": "CLT-2026-0000000000", "name": "Acme Events",
            "created_at": NOW, "updated_at": NOW}
    return Client(**{**base, **fields})


def cond(field, operator, value=ABSENT) -> dict:
    return {"field": field, "operator": operator, **({} if value is ABSENT else {"value": value})}


def hit(c: Client, field, operator, value=ABSENT) -> bool:
    return matches(validate_criteria({"conditions": [cond(field, operator, value)]}, DEFS), c)


def problems(raw, defs=DEFS, **kw) -> list[str]:
    with pytest.raises(ValidationFailed) as exc:
        validate_criteria(raw, defs, **kw)
    assert status_of(exc.value) == 422
    return [d["field"] for d in exc.value.details]


def one(field, operator, value=ABSENT) -> dict:
    return {"match": "all", "conditions": [cond(field, operator, value)]}


# --- fields ----------------------------------------------------------------------------------------

def test_field_types_follow_the_client_model():
    kinds = describe_fields()
    assert kinds["name"] == "text" and kinds["country"] == "text"
    assert kinds["status"] == "enum" and kinds["risk_level"] == "enum"
    assert kinds["credit_limit"] == "decimal" and kinds["health_score"] == "integer"
    assert kinds["churn_probability"] == "float" and kinds["at_risk"] == "boolean"
    assert kinds["last_project_at"] == "timestamp" and kinds["tags"] == "list"
    assert kinds["primary_contact"] == "object"


@pytest.mark.parametrize("field", ["addresses", "custom_fields", "tenant_id", "status_before_archive",
                                   "billing_contact_id", "segment_ids", "custom_fields.nope", "custom_fields.",
                                   "nickname", "", None, 5])
def test_hidden_unknown_and_list_of_object_fields_are_rejected(field):
    assert field not in describe_fields()
    assert problems(one(field, "is_null")) == ["criteria.conditions.0.field"]


# --- operators on each kind of field --------------------------------------------------------------

def test_text_equals_ignores_case_and_not_equals_is_its_opposite():
    c = client(name="Acme Events")
    assert hit(c, "name", "equals", "acme EVENTS")
    assert not hit(c, "name", "equals", "Acme")
    assert hit(c, "name", "not_equals", "Acme")
    assert not hit(c, "name", "not_equals", "ACME events")


def test_text_contains_is_a_case_insensitive_substring():
    c = client(email="Sales@Acme.example")
    assert hit(c, "email", "contains", "@acme.")
    assert not hit(c, "email", "contains", "globex")


def test_enum_equals_in_and_not_in():
    c = client(status="trial", pricing_tier="vip")
    assert hit(c, "status", "equals", "trial")
    assert not hit(c, "status", "equals", "active")
    assert hit(c, "pricing_tier", "in", ["preferred", "vip"])
    assert not hit(c, "pricing_tier", "not_in", ["preferred", "vip"])
    assert hit(c, "pricing_tier", "not_in", ["standard"])


def test_decimal_comparisons_take_numbers_and_decimal_strings():
    c = client(lifetime_revenue=Decimal("12500.00"))
    assert hit(c, "lifetime_revenue", "greater_than", "10000.00")
    assert hit(c, "lifetime_revenue", "greater_than", 12499.99)
    assert not hit(c, "lifetime_revenue", "greater_than", "12500")
    assert hit(c, "lifetime_revenue", "less_than", 12500.01)
    assert hit(c, "lifetime_revenue", "equals", "12500")
    assert hit(c, "lifetime_revenue", "in", [1, "12500.0"])


def test_integer_and_float_comparisons():
    c = client(health_score=40, churn_probability=0.75)
    assert hit(c, "health_score", "less_than", 50)
    assert not hit(c, "health_score", "greater_than", 40)
    assert hit(c, "health_score", "equals", 40.0)
    assert hit(c, "churn_probability", "greater_than", 0.7)
    assert not hit(c, "churn_probability", "less_than", 0.5)


def test_booleans_including_the_derived_at_risk():
    risky, calm = client(churn_probability=0.9, tax_exempt=True), client(churn_probability=0.2)
    assert hit(risky, "at_risk", "equals", True) and not hit(calm, "at_risk", "equals", True)
    assert hit(calm, "at_risk", "equals", False)
    assert hit(risky, "tax_exempt", "equals", True) and hit(calm, "tax_exempt", "not_equals", True)


def test_timestamps_compare_with_dates_and_offsets():
    c = client(last_contacted_at=datetime(2026, 2, 1, 9, 30, tzinfo=UTC))
    assert hit(c, "last_contacted_at", "greater_than", "2026-02-01")  # a date is midnight UTC
    assert hit(c, "last_contacted_at", "less_than", "2026-02-01T09:31:00Z")
    assert not hit(c, "last_contacted_at", "less_than", "2026-02-01T10:29:00+01:00")  # 09:29 UTC
    assert hit(c, "last_contacted_at", "equals", "2026-02-01T11:30:00.000+02:00")


def test_list_contains_means_an_equal_element_ignoring_case():
    c = client(tags=["VIP", "festival"])
    assert hit(c, "tags", "contains", "vip")
    assert not hit(c, "tags", "contains", "fest")  # elements, not substrings


def test_list_in_shares_any_element_and_not_in_shares_none():
    c = client(category_ids=["cat-1", "cat-2"])
    assert hit(c, "category_ids", "in", ["cat-9", "cat-2"])
    assert not hit(c, "category_ids", "in", ["cat-9"])
    assert hit(c, "category_ids", "not_in", ["cat-9"])
    assert not hit(c, "category_ids", "not_in", ["cat-9", "cat-1"])


def test_is_null_counts_none_empty_strings_and_empty_lists():
    empty = client(email="", tags=[], credit_limit=None)
    full = client(email="a@b.example", tags=["x"], credit_limit=Decimal(5),
                  primary_contact=PrimaryContact(id="p1", full_name="Ann"))
    for field in ("email", "tags", "credit_limit", "primary_contact"):
        assert hit(empty, field, "is_null") and not hit(empty, field, "is_not_null")
        assert hit(full, field, "is_not_null") and not hit(full, field, "is_null")
    assert hit(empty, "email", "is_null", None)  # an explicit null value is the same as none


@pytest.mark.parametrize("field,operator,value,expected", [
    ("credit_limit", "equals", "5", False),
    ("credit_limit", "greater_than", 0, False),
    ("credit_limit", "less_than", 0, False),
    ("credit_limit", "in", [5], False),
    ("industry", "contains", "a", False),
    ("tags", "contains", "a", False),
    ("credit_limit", "not_equals", "5", True),
    ("credit_limit", "not_in", [5], True),
    ("tags", "not_in", ["a"], True),
    ("last_project_at", "less_than", "2030-01-01", False),
])
def test_an_empty_value_only_satisfies_the_negative_operators(field, operator, value, expected):
    assert hit(client(), field, operator, value) is expected


# --- country and custom fields ---------------------------------------------------------------------

def test_country_matches_when_any_address_has_it():
    c = client(addresses=[Address(kind="billing", country="NL"), Address(kind="delivery", country="de")])
    assert hit(c, "country", "equals", "DE")
    assert hit(c, "country", "equals", "nl")
    assert not hit(c, "country", "not_equals", "NL")  # not_equals: no address has it
    assert hit(c, "country", "not_equals", "BE")
    assert hit(c, "country", "in", ["BE", "DE"]) and not hit(c, "country", "not_in", ["BE", "DE"])
    assert not hit(c, "country", "is_null")


def test_country_is_null_when_no_address_names_one():
    assert hit(client(addresses=[Address(kind="visiting", city="Utrecht")]), "country", "is_null")
    assert not hit(client(addresses=[]), "country", "equals", "NL")


def test_custom_number_compares_stored_numbers_and_strings():
    assert hit(client(custom_fields={"budget": 5000}), "custom_fields.budget", "greater_than", "4999.5")
    assert hit(client(custom_fields={"budget": "12.50"}), "custom_fields.budget", "equals", 12.5)
    assert not hit(client(custom_fields={"budget": 10}), "custom_fields.budget", "less_than", 10)
    assert not hit(client(), "custom_fields.budget", "greater_than", 0)
    assert hit(client(), "custom_fields.budget", "is_null")


def test_custom_date_compares_as_dates():
    c = client(custom_fields={"signed_on": "2025-06-30"})
    assert hit(c, "custom_fields.signed_on", "less_than", "2025-07-01")
    assert not hit(c, "custom_fields.signed_on", "greater_than", "2025-06-30")
    assert hit(c, "custom_fields.signed_on", "equals", "2025-06-30")


def test_custom_select_boolean_and_text():
    c = client(custom_fields={"level": "Gold", "newsletter": False, "notes": "Prefers phone calls"})
    assert hit(c, "custom_fields.level", "equals", "Gold")
    assert hit(c, "custom_fields.level", "not_in", ["Silver"])
    assert hit(c, "custom_fields.newsletter", "equals", False)
    assert hit(c, "custom_fields.notes", "contains", "PHONE")


def test_a_custom_value_stored_as_another_type_never_matches():
    c = client(custom_fields={"notes": 42, "signed_on": "soon"})
    assert not hit(c, "custom_fields.notes", "contains", "4")
    assert not hit(c, "custom_fields.signed_on", "greater_than", "2000-01-01")


# --- match all / any -------------------------------------------------------------------------------

def test_match_all_needs_every_condition_and_any_needs_one():
    c = client(status="active", health_score=30)
    conditions = [cond("status", "equals", "active"), cond("health_score", "greater_than", 50)]
    assert not matches(validate_criteria({"match": "all", "conditions": conditions}, DEFS), c)
    assert matches(validate_criteria({"match": "any", "conditions": conditions}, DEFS), c)
    assert not matches(validate_criteria({"match": "any", "conditions": conditions[1:]}, DEFS), c)


def test_match_defaults_to_all():
    criteria = validate_criteria({"conditions": [cond("name", "is_not_null")]}, DEFS)
    assert criteria.match == "all"


# --- normalised values -----------------------------------------------------------------------------

def test_values_are_normalised_to_the_field_type():
    raw = {"match": "any", "conditions": [
        cond("credit_limit", "greater_than", 100), cond("health_score", "equals", 70.0),
        cond("churn_probability", "less_than", 1), cond("created_at", "greater_than", "2026-01-01T02:00:00+02:00"),
        cond("custom_fields.signed_on", "less_than", "2026-01-01"), cond("country", "in", ["nl", "Be"]),
        cond("email", "is_null", None)]}
    values = [c.value for c in validate_criteria(raw, DEFS).conditions]
    assert values[0] == Decimal(100) and isinstance(values[0], Decimal)
    assert values[1] == 70 and type(values[1]) is int
    assert type(values[2]) is float
    assert values[3] == datetime(2026, 1, 1, tzinfo=UTC) and values[3].utcoffset().total_seconds() == 0
    assert values[4] == date(2026, 1, 1) and not isinstance(values[4], datetime)
    assert values[5] == ["NL", "BE"]
    assert values[6] is None


def test_validated_criteria_survive_a_json_round_trip():
    criteria = validate_criteria({"match": "any", "conditions": [
        cond("lifetime_revenue", "greater_than", "1000.50"), cond("last_project_at", "less_than", "2026-01-01"),
        cond("custom_fields.signed_on", "equals", "2025-01-31"), cond("tags", "in", ["vip"])]}, DEFS)
    assert validate_criteria(criteria.model_dump(mode="json"), DEFS) == criteria
    assert isinstance(criteria, Criteria) and all(isinstance(c, Condition) for c in criteria.conditions)


def test_operators_are_the_contract_list():
    assert OPERATORS == ("equals", "not_equals", "contains", "greater_than", "less_than", "in", "not_in",
                         "is_null", "is_not_null")


# --- rejected criteria -----------------------------------------------------------------------------

@pytest.mark.parametrize("raw,fields", [
    ([], ["criteria"]),
    ("match all", ["criteria"]),
    ({"conditions": [cond("name", "is_null")], "order": 1}, ["criteria"]),
    ({"match": "some", "conditions": [cond("name", "is_null")]}, ["criteria.match"]),
    ({"match": None, "conditions": [cond("name", "is_null")]}, ["criteria.match"]),
    ({"match": "all"}, ["criteria.conditions"]),
    ({"conditions": []}, ["criteria.conditions"]),
    ({"conditions": {"field": "name"}}, ["criteria.conditions"]),
    ({"conditions": [cond("name", "is_null")] * 21}, ["criteria.conditions"]),
    ({"conditions": ["name"]}, ["criteria.conditions.0"]),
    ({"conditions": [{**cond("name", "is_null"), "negate": True}]}, ["criteria.conditions.0"]),
    ({"conditions": [{"operator": "is_null"}]}, ["criteria.conditions.0.field"]),
])
def test_malformed_criteria_name_the_bad_part(raw, fields):
    assert problems(raw) == fields


def test_twenty_conditions_are_allowed():
    assert len(validate_criteria({"conditions": [cond("name", "is_not_null")] * 20}, DEFS).conditions) == 20


@pytest.mark.parametrize("field,operator", [
    ("name", "starts_with"), ("name", None), ("name", "EQUALS"),
    ("name", "greater_than"), ("status", "contains"), ("tax_exempt", "less_than"),
    ("tags", "equals"), ("tags", "greater_than"), ("primary_contact", "equals"), ("primary_contact", "in"),
    ("custom_fields.level", "greater_than"), ("custom_fields.newsletter", "contains"),
])
def test_unknown_or_inapplicable_operators_are_rejected_on_the_operator(field, operator):
    assert problems(one(field, operator, "x")) == ["criteria.conditions.0.operator"]


@pytest.mark.parametrize("field,operator,value", [
    ("health_score", "equals", "high"), ("health_score", "greater_than", 1.5), ("health_score", "equals", True),
    ("price_multiplier", "equals", "abc"), ("price_multiplier", "equals", True), ("credit_limit", "less_than", "NaN"),
    ("churn_probability", "greater_than", "0.5"), ("churn_probability", "equals", True),
    ("tax_exempt", "equals", "true"), ("tax_exempt", "equals", 1),
    ("status", "equals", "Active"), ("risk_level", "in", ["low", "extreme"]), ("name", "equals", ""),
    ("name", "equals", 5), ("name", "contains", "x" * 1001), ("country", "equals", "Netherlands"),
    ("created_at", "greater_than", "yesterday"), ("created_at", "greater_than", "2026-01-01T10:00:00"),
    ("created_at", "less_than", "2026-13-01"), ("created_at", "less_than", 1767225600),
    ("custom_fields.signed_on", "less_than", "01/02/2026"),
    ("custom_fields.signed_on", "less_than", "2026-01-01T00:00Z"),
    ("custom_fields.level", "equals", "Bronze"), ("custom_fields.budget", "greater_than", "lots"),
    ("custom_fields.newsletter", "equals", "no"),
    ("status", "in", []), ("status", "in", "active"), ("status", "not_in", ["active"] * 101),
    ("tags", "in", ["vip", 3]),
    ("email", "is_null", "x"), ("tags", "is_not_null", []),
    ("name", "equals", None), ("name", "equals", ABSENT), ("status", "in", None),
])
def test_values_of_the_wrong_type_are_rejected_on_the_value(field, operator, value):
    assert problems(one(field, operator, value)) == ["criteria.conditions.0.value"]


def test_all_problems_are_reported_together_under_the_given_prefix():
    raw = {"match": "every", "conditions": [
        cond("name", "is_null"), cond("shoe_size", "frobnicate", 3), cond("health_score", "equals", "x"),
        cond("custom_fields.unknown", "equals", "y")]}
    assert problems(raw, prefix="segment.criteria") == [
        "segment.criteria.match", "segment.criteria.conditions.1.field", "segment.criteria.conditions.1.operator",
        "segment.criteria.conditions.2.value", "segment.criteria.conditions.3.field"]


def test_custom_fields_must_be_defined_for_the_tenant():
    assert problems(one("custom_fields.budget", "is_null"), defs=[]) == ["criteria.conditions.0.field"]


def test_a_rejection_explains_itself():
    with pytest.raises(ValidationFailed) as exc:
        validate_criteria(one("name", "greater_than", "b"), DEFS)
    assert "text" in exc.value.details[0]["message"]
    assert exc.value.message.startswith("criteria.conditions.0.operator")


# --- properties ------------------------------------------------------------------------------------

@given(score=st.integers(0, 100), value=st.integers(-5, 105))
def test_not_equals_is_the_negation_of_equals_for_set_values(score, value):
    c = client(health_score=score)
    assert hit(c, "health_score", "not_equals", value) is not hit(c, "health_score", "equals", value)
    assert hit(c, "health_score", "in", [value]) is hit(c, "health_score", "equals", value)


@given(have=st.decimals(-10**6, 10**6, places=2), want=st.decimals(-10**6, 10**6, places=3))
def test_exactly_one_of_less_equal_greater_holds(have, want):
    c = client(outstanding_balance=have)
    outcomes = [hit(c, "outstanding_balance", op, str(want)) for op in ("less_than", "equals", "greater_than")]
    assert outcomes.count(True) == 1


@given(name=st.text(min_size=1, max_size=30), data=st.data())
def test_a_name_contains_each_of_its_parts_in_any_case(name, data):
    start = data.draw(st.integers(0, len(name) - 1))
    part = name[start:data.draw(st.integers(start + 1, len(name)))]
    c = client(name=name)
    assert hit(c, "name", "contains", part) and hit(c, "name", "contains", part.casefold())
    assert hit(c, "name", "equals", name.casefold()) and not hit(c, "name", "not_equals", name)
