"""Health and lead scoring: neutral start, each factor's bands, feedback, churn, risk bands and lead dimensions."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib.domain import scoring
from chalicelib.domain.clients import Address, Client
from chalicelib.domain.communications import Communication
from chalicelib.domain.contacts import Contact
from chalicelib.domain.integrations import Invoice, Project
from chalicelib.domain.scoring import (
    Inputs,
    churn_probability,
    classify,
    health,
    lead_score,
    risk_level,
)
from chalicelib.domain.settings import LeadScoreThresholds

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
FACTOR_NAMES = ["payment_history", "project_frequency", "communication_engagement", "outstanding_balance_ratio",
                "days_since_last_project"]


def client(**fields) -> Client:
    return Client(**{"id": "c1", "tenant_id": "t", "client_number": "CLT-2026-1200001a2b", "name": "Acme",
                     "created_at": NOW, "updated_at": NOW, **fields})


def contact(cid="p1", **fields) -> Contact:
    return Contact(**{"id": cid, "tenant_id": "t", "contact_number": "CON-2026-1200001a2b", "client_id": "c1",
                      "full_name": "Ann Lee", "email": "ann@acme.test", "created_at": NOW, "updated_at": NOW,
                      **fields})


def comm(days_ago: float, type_="email", direction="outbound", deleted=False) -> Communication:
    at = NOW - timedelta(days=days_ago)
    return Communication(id=f"m{days_ago}{type_}{direction}", tenant_id="t", client_id="c1", type=type_,
                         direction=direction, occurred_at=at, created_at=at, updated_at=at,
                         deleted_at=NOW if deleted else None)


def project(days_ago: int | None, status="completed") -> Project:
    start = TODAY - timedelta(days=days_ago) if days_ago is not None else None
    return Project(id=f"p{days_ago}{status}", tenant_id="t", client_id="c1", status=status, start_date=start,
                   created_at=NOW, updated_at=NOW)


def invoice(status: str, amount="1000", kind="invoice", due_days_ago: int | None = None,
            paid_days_ago: int | None = None, issued_days_ago: int | None = None) -> Invoice:
    def ago(days):
        return None if days is None else NOW - timedelta(days=days)
    return Invoice(id=f"i{status}{amount}{due_days_ago}{paid_days_ago}", tenant_id="t", client_id="c1", kind=kind,
                   amount=Decimal(amount), currency="EUR", status=status,
                   due_date=None if due_days_ago is None else TODAY - timedelta(days=due_days_ago),
                   paid_at=ago(paid_days_ago), issued_at=ago(issued_days_ago), created_at=NOW, updated_at=NOW)


def inputs(c: Client | None = None, *, contacts=(), comms=(), projects=(), invoices=(), ratings=()) -> Inputs:
    return Inputs(client=c or client(), contacts=list(contacts), communications=list(comms),
                  projects=list(projects), invoices=list(invoices), ratings=list(ratings), now=NOW)


def factor(h, name):
    return next(f for f in h.factors if f.name == name)


# --- health ---------------------------------------------------------------------------------------------------

def test_a_new_client_scores_a_neutral_70_with_low_risk_and_five_neutral_factors():
    h = health(inputs())
    assert (h.health_score, h.risk_level, h.churn_probability, h.at_risk) == (70, "low", 0.0474, False)
    assert h.feedback_adjustment == 0
    assert [f.name for f in h.factors] == FACTOR_NAMES
    assert [(f.value, f.score) for f in h.factors] == [(None, 70)] * 5
    assert [f.weight for f in h.factors] == [0.30, 0.20, 0.15, 0.20, 0.15]
    assert [f.contribution for f in h.factors] == [21.0, 14.0, 10.5, 14.0, 10.5]


def troubled(ratings=()) -> Inputs:
    return inputs(projects=[project(400)], ratings=ratings, invoices=[
        invoice("overdue", due_days_ago=60), invoice("overdue", due_days_ago=30),
        invoice("paid", amount="2000", due_days_ago=90, paid_days_ago=70)])   # paid 20 days late: half credit


def test_overdue_invoices_and_a_long_gap_since_the_last_project_lower_health_to_high_risk():
    h = health(troubled())
    assert {f.name: (f.value, f.score) for f in h.factors} == {
        "payment_history": (0.1667, 17), "project_frequency": (0.0, 20), "communication_engagement": (None, 70),
        "outstanding_balance_ratio": (0.5, 40),   # 50 capped at 40 by the overdue invoices
        "days_since_last_project": (400.0, 10)}
    # 17*.3 + 20*.2 + 70*.15 + 40*.2 + 10*.15 = 29.1
    assert (h.health_score, h.risk_level, h.churn_probability, h.at_risk) == (29, "high", 0.8721, True)


def test_a_paid_on_time_history_and_recent_projects_raise_health_above_70():
    h = health(inputs(
        projects=[project(10), project(60), project(200), project(300), project(20, status="cancelled")],
        invoices=[invoice("paid", due_days_ago=d + 5, paid_days_ago=d + 10) for d in (10, 40, 90)],
        comms=[comm(1), comm(5, "phone", "inbound"), comm(50, "meeting")]))
    assert {f.name: f.score for f in h.factors} == {
        "payment_history": 100, "project_frequency": 100, "communication_engagement": 80,
        "outstanding_balance_ratio": 100, "days_since_last_project": 100}
    assert (h.health_score, h.risk_level, h.churn_probability, h.at_risk) == (97, "low", 0.0019, False)


def test_an_open_invoice_counts_for_payment_history_only_once_past_due():
    not_yet_due = [invoice("open", due_days_ago=0), invoice("open", due_days_ago=-10), invoice("draft"),
                   invoice("paid", kind="quote")]
    assert factor(health(inputs(invoices=not_yet_due)), "payment_history").value is None
    past_due = [invoice("open", due_days_ago=1), invoice("paid", due_days_ago=10, paid_days_ago=12)]
    f = factor(health(inputs(invoices=past_due)), "payment_history")
    assert (f.value, f.score) == (0.5, 50)


def test_outstanding_balance_ratio_is_open_and_overdue_over_all_billed_invoices():
    f = factor(health(inputs(invoices=[invoice("open", amount="250"), invoice("paid", amount="750"),
                                       invoice("void", amount="9000")])), "outstanding_balance_ratio")
    assert (f.value, f.score, f.contribution) == (0.25, 75, 15.0)


def test_communication_engagement_counts_non_note_items_of_the_last_90_days_and_ignores_deleted_ones():
    f = factor(health(inputs(comms=[comm(120), comm(3, "note"), comm(2, deleted=True)])), "communication_engagement")
    assert (f.value, f.score) == (0.0, 30)
    only_notes = factor(health(inputs(comms=[comm(3, "note"), comm(2, deleted=True)])), "communication_engagement")
    assert (only_notes.value, only_notes.score) == (None, 70)
    six = factor(health(inputs(comms=[comm(d) for d in range(6)])), "communication_engagement")
    assert (six.value, six.score) == (6.0, 100)


@pytest.mark.parametrize("days_ago, score", [(-20, 100), (30, 100), (31, 80), (90, 80), (180, 60), (365, 35),
                                             (366, 10)])
def test_days_since_last_project_bands_with_a_future_start_as_zero_days(days_ago, score):
    f = factor(health(inputs(projects=[project(days_ago, status="planned"), project(None)])),
               "days_since_last_project")
    assert (f.value, f.score) == (float(max(days_ago, 0)), score)


@pytest.mark.parametrize("ratings, adjustment, score", [([5, 5], 10, 80), ([1], -10, 60), ([4, 5], 8, 78),
                                                        ([3, 3, 3], 0, 70), ([], 0, 70)])
def test_feedback_ratings_add_average_minus_three_times_five(ratings, adjustment, score):
    h = health(inputs(ratings=ratings))
    assert (h.feedback_adjustment, h.health_score) == (adjustment, score)


def test_feedback_cannot_push_health_above_100():
    h = health(inputs(projects=[project(d) for d in (1, 2, 3, 4)], comms=[comm(d) for d in range(6)],
                      invoices=[invoice("paid", due_days_ago=5, paid_days_ago=6)], ratings=[5]))
    assert (h.health_score, h.feedback_adjustment) == (100, 10)


# --- churn and risk -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("score, churn", [(70, 0.0474), (45, 0.5), (30, 0.8581), (0, 0.9955), (100, 0.0014)])
def test_churn_probability_is_a_logistic_curve_centred_on_45(score, churn):
    assert churn_probability(score) == churn


def test_at_risk_begins_where_churn_exceeds_0_7_between_health_38_and_37():
    assert churn_probability(38) == 0.6985 and churn_probability(37) == 0.7231
    # the troubled client's 29.1 plus +9 (ratings average 4.8) and +8 (average 4.6)
    at_38, at_37 = health(troubled([5, 5, 5, 5, 4])), health(troubled([5, 5, 5, 4, 4]))
    assert (at_38.health_score, at_38.churn_probability, at_38.at_risk) == (38, 0.6985, False)
    assert (at_37.health_score, at_37.churn_probability, at_37.at_risk) == (37, 0.7231, True)
    assert at_38.risk_level == at_37.risk_level == "high"   # below 40 is high risk even when not at risk


@pytest.mark.parametrize("score, churn, level", [
    (65, 0.29, "low"), (64, 0.1, "medium"), (80, 0.3, "medium"), (40, 0.5, "medium"), (39, 0.5, "high"),
    (90, 0.71, "high"), (50, 0.7, "medium")])
def test_risk_bands(score, churn, level):
    assert risk_level(score, churn) == level


# --- lead score -----------------------------------------------------------------------------------------------

def full_profile() -> Inputs:
    c = client(type="company", email="a@acme.test", phone="+31 20 1234567", website="https://acme.test",
               industry="events", vat_number="NL123", addresses=[Address(kind="visiting", city="Amsterdam")])
    return inputs(c, contacts=[contact(is_primary=True, portal_access=True)],
                  comms=[comm(d, direction="inbound") for d in (1, 2, 3, 4, 5)],
                  projects=[project(d) for d in (10, 200, 400, 500)],
                  invoices=[invoice("paid", amount="60000", issued_days_ago=20)])


def test_a_complete_active_company_scores_25_in_every_dimension():
    s = lead_score(full_profile())
    assert (s.demographic_score, s.behavioral_score, s.engagement_score, s.firmographic_score) == (25, 25, 25, 25)
    assert s.total_score == 100
    assert classify(s.total_score, LeadScoreThresholds()) == "hot"


def test_rule_breakdown_lists_every_rule_with_its_points_and_maximum():
    s = lead_score(inputs(client(type="venue", email="v@hall.test", industry="theatre"),
                          contacts=[contact(portal_access=True, deleted_at=NOW)],   # deleted: no portal points
                          comms=[comm(10, "phone", "inbound"), comm(40, "sms", "inbound"), comm(1, "note")],
                          projects=[project(100), project(50, status="cancelled")],
                          invoices=[invoice("paid", amount="12000"), invoice("paid", kind="credit_note",
                                                                              amount="1500")]))
    assert s.rule_breakdown == {
        "demographic": [
            {"rule": "has_email", "points": 5, "max": 5}, {"rule": "has_phone", "points": 0, "max": 4},
            {"rule": "has_website", "points": 0, "max": 3}, {"rule": "has_address", "points": 0, "max": 4},
            {"rule": "has_primary_contact", "points": 0, "max": 5}, {"rule": "has_industry", "points": 2, "max": 2},
            {"rule": "has_registration_or_vat", "points": 0, "max": 2}],
        "behavioral": [
            {"rule": "projects", "points": 8, "max": 15},
            {"rule": "quote_or_invoice_last_180_days", "points": 0, "max": 5},
            {"rule": "project_starting_last_180_days_or_upcoming", "points": 5, "max": 5}],
        "engagement": [
            {"rule": "portal_access", "points": 0, "max": 8},
            {"rule": "inbound_communications_last_90_days", "points": 9, "max": 12},
            {"rule": "communication_last_30_days", "points": 5, "max": 5}],
        "firmographic": [
            {"rule": "client_type", "points": 3, "max": 5}, {"rule": "has_industry", "points": 3, "max": 3},
            {"rule": "lifetime_revenue", "points": 12, "max": 17}]}   # 12000 - 1500 credited = 10500
    assert (s.demographic_score, s.behavioral_score, s.engagement_score, s.firmographic_score) == (7, 13, 14, 18)
    assert s.total_score == 52
    for rules in s.rule_breakdown.values():
        assert sum(r["max"] for r in rules) == 25


def test_each_dimension_is_the_sum_of_its_rules_capped_at_25_and_the_total_is_their_sum():
    for example in (full_profile(), inputs(), inputs(client(type="individual"))):
        s = lead_score(example)
        dims = [s.demographic_score, s.behavioral_score, s.engagement_score, s.firmographic_score]
        assert dims == [min(25, sum(r["points"] for r in rules)) for rules in s.rule_breakdown.values()]
        assert all(0 <= d <= 25 for d in dims) and s.total_score == sum(dims)


def test_a_bare_individual_scores_zero():
    s = lead_score(inputs(client(type="individual")))
    assert s.total_score == 0 and classify(s.total_score, LeadScoreThresholds()) == "cold"


@pytest.mark.parametrize("revenue, points", [("999", 0), ("1000", 6), ("9999.99", 6), ("10000", 12),
                                             ("49999", 12), ("50000", 17)])
def test_lifetime_revenue_scores_only_its_highest_band(revenue, points):
    s = lead_score(inputs(invoices=[invoice("paid", amount=revenue)]))
    assert s.rule_breakdown["firmographic"][2] == {"rule": "lifetime_revenue", "points": points, "max": 17}


@pytest.mark.parametrize("n, points", [(0, 0), (1, 5), (2, 9), (4, 9), (5, 12)])
def test_inbound_communications_of_the_last_90_days_score_in_bands(n, points):
    comms = [comm(d + 1, direction="inbound") for d in range(n)] + [comm(95, direction="inbound"), comm(2)]
    s = lead_score(inputs(comms=comms))
    assert s.rule_breakdown["engagement"][1]["points"] == points


@pytest.mark.parametrize("total, default, custom", [(100, "hot", "hot"), (80, "hot", "hot"), (79, "warm", "hot"),
                                                    (60, "warm", "hot"), (59, "warm", "warm"), (50, "warm", "warm"),
                                                    (49, "cold", "warm"), (30, "cold", "warm"), (29, "cold", "cold"),
                                                    (0, "cold", "cold")])
def test_classify_with_default_and_custom_thresholds(total, default, custom):
    assert classify(total, LeadScoreThresholds()) == default
    assert classify(total, LeadScoreThresholds(hot=60, warm=30)) == custom


def test_a_dimension_never_scores_more_than_25_even_if_its_rules_add_up_to_more(monkeypatch):
    monkeypatch.setitem(scoring.DIMENSIONS, "firmographic",
                        lambda i: [{"rule": "a", "points": 20, "max": 20}, {"rule": "b", "points": 20, "max": 20}])
    s = lead_score(inputs())
    assert (s.firmographic_score, s.total_score) == (25, 25)


def test_the_worked_example_of_docs_scoring_md():
    c = client(email="hello@stagecraft.test", phone="+31 20 555 0100", industry="events",
               addresses=[Address(kind="visiting", city="Utrecht")])
    example = inputs(
        c, contacts=[contact(is_primary=True, portal_access=True)], ratings=[4, 5],
        comms=[comm(3, "email", "inbound"), comm(12, "phone", "inbound"), comm(20), comm(60, "meeting"),
               comm(5, "note")],
        projects=[project(45), project(200)],
        invoices=[invoice("paid", "4000", due_days_ago=100, paid_days_ago=105, issued_days_ago=130),
                  invoice("paid", "2500", due_days_ago=60, paid_days_ago=62, issued_days_ago=90),
                  invoice("paid", "1500", due_days_ago=40, paid_days_ago=30, issued_days_ago=70),   # 10 days late
                  invoice("open", "2000", due_days_ago=-14, issued_days_ago=16)])
    h = health(example)
    assert [(f.value, f.score, f.contribution) for f in h.factors] == [
        (0.8333, 83, 24.9), (2.0, 75, 15.0), (4.0, 80, 12.0), (0.2, 80, 16.0), (45.0, 80, 12.0)]
    assert (h.feedback_adjustment, h.health_score, h.churn_probability, h.risk_level) == (8, 88, 0.0057, "low")
    s = lead_score(example)
    assert (s.demographic_score, s.behavioral_score, s.engagement_score, s.firmographic_score) == (20, 22, 22, 14)
    assert (s.total_score, classify(s.total_score, LeadScoreThresholds())) == (78, "warm")
