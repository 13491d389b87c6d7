"""Integrations and scores over HTTP: facts upserted by other modules move the client's figures, health and lead."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

TODAY = date.today()


def _days_ago(n: int) -> str:
    return (TODAY - timedelta(days=n)).isoformat()


@pytest.fixture
def acme(api):
    return api.post("/v1/clients", {"name": "Acme Events"}).data


def _invoice(api, invoice_id, client_id, **fields):
    body = {"client_id": client_id, "kind": "invoice", "amount": "1000.00", "status": "paid", **fields}
    return api.put(f"/v1/integrations/invoices/{invoice_id}", body)


def _project(api, project_id, client_id, **fields):
    body = {"client_id": client_id, "status": "completed", **fields}
    return api.put(f"/v1/integrations/projects/{project_id}", body)


def test_the_first_put_creates_later_ones_replace(api, acme):
    first = _invoice(api, "INV-1", acme["id"], status="open", due_date=_days_ago(-10))
    assert first.status_code == 201 and first.data["amount"] == "1000.00" and first.data["currency"] == "EUR"
    again = _invoice(api, "INV-1", acme["id"], status="paid", paid_at="2026-01-02T10:00:00Z")
    assert again.status_code == 200 and again.data["status"] == "paid"
    same = _invoice(api, "INV-1", acme["id"], status="paid", paid_at="2026-01-02T10:00:00Z")
    assert same.status_code == 200 and same.data["updated_at"] == again.data["updated_at"]


def test_invoices_give_lifetime_revenue_and_outstanding_balance(api, acme):
    _invoice(api, "INV-1", acme["id"], amount="1200.00")
    _invoice(api, "INV-2", acme["id"], amount="300.50", status="open", due_date=_days_ago(-5))
    _invoice(api, "INV-3", acme["id"], amount="99.50", status="overdue", due_date=_days_ago(10))
    _invoice(api, "CN-1", acme["id"], kind="credit_note", amount="200.00", status="open")
    _invoice(api, "CN-2", acme["id"], kind="credit_note", amount="50.00", status="void")
    _invoice(api, "Q-1", acme["id"], kind="quote", amount="5000.00", status="open")
    client = api.get(f"/v1/clients/{acme['id']}").data
    assert client["lifetime_revenue"] == "1000.00" and client["outstanding_balance"] == "400.00"
    assert client["version"] == acme["version"]  # derived figures never make If-Match stale


def test_projects_give_count_and_last_project(api, acme):
    _project(api, "P-1", acme["id"], start_date="2026-03-01")
    _project(api, "P-2", acme["id"], start_date="2026-05-01", status="active")
    _project(api, "P-3", acme["id"], start_date="2026-07-01", status="cancelled")
    client = api.get(f"/v1/clients/{acme['id']}").data
    assert client["projects_count"] == 2 and client["last_project_at"] == "2026-05-01T00:00:00.000Z"


def test_an_inactive_client_takes_no_new_or_reopened_project(api, acme):
    _project(api, "P-1", acme["id"], status="completed")
    api.patch(f"/v1/clients/{acme['id']}", {"status": "inactive"})
    new = _project(api, "P-2", acme["id"], status="planned")
    assert new.status_code == 409 and new.data["error"]["code"] == "client_not_active"
    reopened = _project(api, "P-1", acme["id"], status="active")
    assert reopened.status_code == 409
    assert api.as_(roles=("integration",)).get("/v1/integrations/projects/P-2").status_code == 404
    assert _project(api, "P-1", acme["id"], status="completed", value="10.00").status_code == 200


@pytest.mark.parametrize("client_status", ["inactive", "archived"])
def test_a_planned_project_cannot_become_active_for_an_inactive_or_archived_client(api, acme, client_status):
    assert _project(api, "P-1", acme["id"], status="planned").status_code == 201
    if client_status == "archived":
        api.post(f"/v1/clients/{acme['id']}/archive")
    else:
        api.patch(f"/v1/clients/{acme['id']}", {"status": client_status})
    moved = _project(api, "P-1", acme["id"], status="active")
    assert moved.status_code == 409 and moved.data["error"]["code"] == "client_not_active"
    stored = api.as_(roles=("integration",)).get("/v1/integrations/projects/P-1").data
    assert stored["status"] == "planned"
    # staying planned (a new value) is no move; closing the project is allowed too
    assert _project(api, "P-1", acme["id"], status="planned", value="5.00").status_code == 200
    assert _project(api, "P-1", acme["id"], status="completed").status_code == 200


def test_bad_facts_are_refused_and_change_nothing(api, acme):
    checks = [
        (_invoice(api, "INV-X", "nope"), "client_id"),
        (_invoice(api, "INV-X", acme["id"], amount="-5.00"), "amount"),
        (_invoice(api, "INV-X", acme["id"], status="lost"), "status"),
        (_project(api, "P-X", acme["id"], contact_ids=["nobody"]), "contact_ids.0"),
        (_project(api, "P-X", acme["id"], start_date="2026-05-02", end_date="2026-05-01"), ""),
    ]
    for response, field in checks:
        assert response.status_code == 422, response.data
        assert any(d["field"].startswith(field) for d in response.data["error"]["details"])
    assert api.get(f"/v1/clients/{acme['id']}").data["lifetime_revenue"] == "0.00"


def test_only_integration_and_admin_roles_push_facts(api, acme):
    assert _invoice(api.as_(roles=("manager",)), "INV-1", acme["id"]).status_code == 403
    assert _invoice(api.as_(roles=("integration",)), "INV-1", acme["id"]).status_code == 201
    assert api.as_(roles=("integration",)).get(f"/v1/clients/{acme['id']}").status_code == 403
    assert _invoice(api.as_("t2", ("integration",)), "INV-9", acme["id"]).status_code == 422


def test_a_new_client_starts_at_70_low_with_five_neutral_factors(api, acme):
    health = api.get(f"/v1/clients/{acme['id']}/health").data
    assert health["health_score"] == 70 and health["risk_level"] == "low" and health["at_risk"] is False
    assert [f["name"] for f in health["factors"]] == ["payment_history", "project_frequency",
                                                      "communication_engagement", "outstanding_balance_ratio",
                                                      "days_since_last_project"]
    assert all(f["value"] is None and f["score"] == 70 for f in health["factors"])


def test_overdue_invoices_and_a_long_gap_lower_health_and_raise_risk(api, acme):
    _project(api, "P-1", acme["id"], start_date=_days_ago(500))
    for n in range(3):
        _invoice(api, f"INV-{n}", acme["id"], status="overdue", due_date=_days_ago(60))
    client = api.get(f"/v1/clients/{acme['id']}").data
    health = api.get(f"/v1/clients/{acme['id']}/health").data
    assert client["health_score"] == health["health_score"] < 40
    assert client["risk_level"] == "high" and client["at_risk"] is True and client["churn_probability"] > 0.7
    chips = api.get("/v1/clients/chips").data
    assert chips["at_risk"] == 1
    assert [c["name"] for c in api.get("/v1/clients?risk_level=high").data["items"]] == ["Acme Events"]


def test_a_paid_on_time_history_with_recent_projects_raises_health(api, acme):
    for n in range(3):
        _project(api, f"P-{n}", acme["id"], start_date=_days_ago(20 + 60 * n))
        _invoice(api, f"INV-{n}", acme["id"], due_date=_days_ago(30 + 60 * n),
                 paid_at=f"{_days_ago(40 + 60 * n)}T12:00:00Z")
    health = api.get(f"/v1/clients/{acme['id']}/health").data
    assert health["health_score"] > 70 and health["risk_level"] == "low"
    by_name = {f["name"]: f for f in health["factors"]}
    assert by_name["payment_history"]["score"] == 100 and by_name["payment_history"]["value"] == 1.0


def test_feedback_moves_health(api, acme):
    assert api.post(f"/v1/clients/{acme['id']}/feedback", {"rating": 6}).status_code == 422
    response = api.post(f"/v1/clients/{acme['id']}/feedback", {"rating": 5, "comment": "Great crew"})
    assert response.status_code == 201 and response.data["rating"] == 5
    health = api.get(f"/v1/clients/{acme['id']}/health").data
    assert health["feedback_adjustment"] == 10 and health["health_score"] == 80


def test_lead_classes_move_with_the_thresholds_and_each_change_leaves_one_history_entry(api, acme):
    path = f"/v1/clients/{acme['id']}/lead-score"
    first = api.get(path).data
    total = first["total_score"]
    assert total == sum(first[f"{d}_score"] for d in ("demographic", "behavioral", "engagement", "firmographic"))
    assert first["classification"] == "cold" and first["previous_score"] is None
    api.patch(f"/v1/clients/{acme['id']}", {"email": "hello@acme.test", "phone": "+31 20 555 0100"})
    changed = api.post(f"{path}/recalculate").data
    assert changed["total_score"] == total + 9 and changed["previous_score"] == total and changed["has_improved"]
    api.post(f"{path}/recalculate")  # no change: no new history entry
    history = api.get(f"{path}/history").data["items"]
    assert [h["score"] for h in history] == [total + 9, total]
    assert history[0]["change"] == 9 and "has_email +5" in history[0]["change_reason"]
    assert changed["classification"] == "cold"
    assert api.put("/v1/settings/lead-score-thresholds", {"hot": total + 9, "warm": 1}).status_code == 200
    assert api.get(path).data["classification"] == "hot"
    assert api.get(f"/v1/clients/{acme['id']}").data["lead_classification"] == "hot"
    bad = api.put("/v1/settings/lead-score-thresholds", {"hot": 50, "warm": 50})
    assert bad.status_code == 422 and api.get("/v1/settings/lead-score-thresholds").data["hot"] == total + 9


def test_the_dashboard_sums_up_the_client(api, acme):
    api.post(f"/v1/clients/{acme['id']}/contacts", {"full_name": "Pat Primary", "email": "pat@acme.test"})
    base = f"/v1/clients/{acme['id']}/communications"
    api.post(base, {"type": "note", "body": "Call back about the rig", "requires_followup": True,
                    "followup_date": "2026-12-01"})
    api.post(base, {"type": "phone", "direction": "inbound"})
    _invoice(api, "INV-1", acme["id"], amount="700.00")
    _invoice(api, "INV-2", acme["id"], amount="100.00", status="overdue", due_date=_days_ago(3))
    _invoice(api, "Q-1", acme["id"], kind="quote", amount="900.00", status="open")
    board = api.get(f"/v1/clients/{acme['id']}/dashboard").data
    assert board["client"]["id"] == acme["id"] and board["contacts_count"] == 1
    assert board["communications_by_type"] == {"email": 0, "phone": 1, "sms": 0, "meeting": 0, "note": 1}
    assert [f["followup_date"] for f in board["open_followups"]] == ["2026-12-01"]
    money = board["financial_summary"]
    assert (money["lifetime_revenue"], money["outstanding_balance"], money["overdue_balance"]) == \
        ("700.00", "100.00", "100.00")
    assert money["open_quotes_count"] == 1 and money["invoices_count"] == 2
    assert board["health"]["health_score"] == api.get(f"/v1/clients/{acme['id']}").data["health_score"]
    assert board["lead_score"]["classification"] in ("hot", "warm", "cold")
    assert api.as_("t2").get(f"/v1/clients/{acme['id']}/dashboard").status_code == 404
