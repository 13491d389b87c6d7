"""Which facet partitions hold every client segment criteria can match: the candidates a refresh reads."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.clients import Client, FacetRules, facets
from chalicelib.domain.segment_criteria import selecting_facets, validate_criteria
from chalicelib.domain.segments import belongs

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
RULES = FacetRules(high_value_threshold=Decimal("10000"), new_since=NOW)


def criteria(*conditions, match="all"):
    return validate_criteria({"match": match, "conditions": [
        {"field": f, "operator": o, **({} if v is None else {"value": v})} for f, o, v in conditions]}, [])


@pytest.mark.parametrize(("conditions", "match", "groups"), [
    ([("pricing_tier", "equals", "vip")], "all", [[("tier", "vip")]]),
    ([("status", "in", ["lead", "trial", "lead"])], "all", [[("status", "lead"), ("status", "trial")]]),
    ([("status", "equals", "archived")], "all", [[]]),  # archived clients never belong: no candidate at all
    ([("tags", "contains", "Festival")], "all", [[("tag", "festival")]]),
    ([("category_ids", "contains", "01hcat")], "all", [[("category", "01hcat"), ("category", "01HCAT")]]),
    ([("at_risk", "equals", True)], "all", [[("atrisk", "1")]]),
    ([("at_risk", "equals", False)], "all", []),
    ([("lifetime_revenue", "greater_than", "10000")], "all", [[("highvalue", "1")]]),
    ([("lifetime_revenue", "greater_than", "9999")], "all", []),  # 9,999.50 holds but is no high-value client
    ([("pricing_tier", "not_equals", "vip")], "all", []),
    ([("name", "contains", "acme"), ("type", "equals", "venue")], "all", [[("type", "venue")]]),
    ([("pricing_tier", "equals", "vip"), ("type", "equals", "venue")], "all", [[("tier", "vip")],
                                                                               [("type", "venue")]]),
    ([("pricing_tier", "equals", "vip"), ("tags", "in", ["a", "B"])], "any",
     [[("tier", "vip"), ("tag", "a"), ("tag", "b")]]),
    ([("pricing_tier", "equals", "vip"), ("email", "is_null", None)], "any", []),  # one unselected: every client
])
def test_each_condition_a_facet_selects_names_its_partitions(conditions, match, groups):
    assert selecting_facets(criteria(*conditions, match=match), Decimal("10000")) == groups


def test_revenue_conditions_use_the_high_value_list_only_when_its_threshold_is_known():
    assert selecting_facets(criteria(("lifetime_revenue", "greater_than", "50000"))) == []


CLIENTS = st.builds(
    lambda status, tier, kind, tags, churn, revenue: Client(
        id="c1", tenant_id="t1", client_number="CLT-1", name="Acme", created_at=NOW, updated_at=NOW, status=status,
        pricing_tier=tier, type=kind, tags=tags, churn_probability=churn, lifetime_revenue=Decimal(revenue)),
    st.sampled_from(["lead", "active", "inactive", "archived"]), st.sampled_from(["standard", "vip", "preferred"]),
    st.sampled_from(["company", "venue"]), st.lists(st.sampled_from(["a", "B", "Festival"]), max_size=2, unique=True),
    st.sampled_from([0.1, 0.9]), st.sampled_from(["0", "9999.99", "10000", "25000"]))
CONDITIONS = st.sampled_from([
    ("pricing_tier", "equals", "vip"), ("pricing_tier", "in", ["vip", "preferred"]), ("status", "equals", "lead"),
    ("status", "in", ["archived", "active"]), ("type", "equals", "venue"), ("tags", "contains", "festival"),
    ("tags", "in", ["b", "A"]), ("at_risk", "equals", True), ("lifetime_revenue", "greater_than", "10000"),
    ("lifetime_revenue", "equals", "25000"), ("name", "contains", "cm"), ("pricing_tier", "not_equals", "vip")])


@settings(max_examples=300, deadline=None)
@given(CLIENTS, st.lists(CONDITIONS, min_size=1, max_size=3), st.sampled_from(["all", "any"]))
def test_every_client_the_criteria_match_is_in_each_group_selecting_them(client, conditions, match):
    wanted = criteria(*conditions, match=match)
    if belongs(wanted, client):
        held = facets(client, RULES)
        for group in selecting_facets(wanted, RULES.high_value_threshold):
            assert held & set(group), (group, held)
