"""The ops jobs' rules without a database: what a client check reports, where the walk counts a client, state size."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chalicelib.domain import job_cases, ops_cases
from chalicelib.domain.clients import Client, FacetRules
from chalicelib.domain.ops_cases import ClientCheck, difference, expected_facets, tally

NOW = datetime(2026, 5, 1, tzinfo=UTC)
RULES = FacetRules(Decimal("10000"), NOW - timedelta(days=30))


def client(**fields) -> Client:
    return Client.model_validate({"id": "c1", "tenant_id": "t1", "client_number": "CLT-1", "name": "Acme",
                                  "created_at": NOW - timedelta(days=90), "updated_at": NOW, **fields})


def check(c: Client, entries: dict | None = None, holder: str | None = "c1", missing: set | None = None) -> ClientCheck:
    expected = expected_facets(c, RULES)
    stored = dict.fromkeys(expected, not c.is_archived) if entries is None else entries
    return ClientCheck(c, expected, stored, holder, {"acm", "cme"}, missing or set())


def test_a_client_whose_stored_items_match_has_no_difference_and_needs_no_fix():
    ok = check(client(tags=["Gold"], category_ids=["k1"]))
    assert ok.differences == [] and not any(ok.fixes.values())


def test_missing_extra_and_wrongly_live_entries_are_each_named():
    c = client(pricing_tier="vip")
    stored = {f: True for f in expected_facets(c, RULES) if f != ("tier", "vip")}
    stored[("status", "lead")] = True
    stored[("live", "1")] = False
    found = check(c, stored)
    assert [d["message"] for d in found.differences] == [
        "tier=vip: missing", "status=lead: extra: not implied by the client", "live=1: live=False, expected True"]
    assert found.fixes["facet_entries"] == 3


def test_an_archived_clients_entries_are_expected_not_live_and_it_has_no_live_entry():
    c = client(status="archived")
    assert ("live", "1") not in expected_facets(c, RULES)
    assert check(c).differences == []


def test_a_number_item_missing_is_repaired_but_one_held_by_another_client_is_only_reported():
    assert check(client(), holder=None).fixes["number_items"] == 1
    taken = check(client(), holder="c9")
    assert taken.differences == [difference("client_number", "c1", "number item CLT-1 names client c9")]
    assert taken.fixes["number_items"] == 0


def test_missing_search_terms_are_counted_and_named():
    found = check(client(), missing={"cme"})
    assert found.differences == [difference("search_terms", "c1", "1 of 2 terms missing: cme")]


def test_a_client_with_a_second_status_entry_is_counted_at_its_own_status_only():
    c = client(status="active")
    stored = {("status", "active"): True, ("status", "lead"): True}
    assert [s for s in ops_cases.STATUSES if check(c, stored).counted_at(s)] == ["active"]
    without_own = {("status", "trial"): True, ("status", "inactive"): True}
    assert [s for s in ops_cases.STATUSES if check(c, without_own).counted_at(s)] == ["trial"]


def test_the_recount_tallies_live_clients_by_counted_facet_category_and_day():
    counts: dict[str, int] = {}
    days: dict[str, int] = {}
    for c in (client(category_ids=["k1"], tags=["x"]), client(id="c2", status="archived", category_ids=["k1"])):
        tally(counts, days, c, expected_facets(c, RULES))
    assert counts == {"status|active": 1, "type|company": 1, "tier|standard": 1, "risk|low": 1, "live|1": 1,
                      "category|k1": 1}
    assert days == {"2026-01-31": 1}


def test_a_difference_message_is_cut_to_its_bound():
    assert len(difference("search_terms", "c1", "x" * 1000)["message"]) == ops_cases.MAX_MESSAGE


def test_the_job_item_stays_well_under_400_kb_for_ten_years_of_days_and_a_thousand_categories():
    day = datetime(2016, 1, 1)
    state = {"status": 2, "after": "01J" + "0" * 23,
             "counts": {**{f"{f}|{v}": 100_000 for f, v in ops_cases.COUNTED_ENTRIES},
                        **{f"category|01J{n:023d}": 100_000 for n in range(1000)}},
             "days": {f"{day + timedelta(days=n):%Y-%m-%d}": 1000 for n in range(3653)}}
    errors = [difference("facet_entry", "01J" + "0" * 23, "x" * 1000)] * ops_cases.MAX_REPORTED
    size = len(json.dumps(state)) + len(json.dumps(errors))
    assert size < 200_000, size


def test_the_worker_registers_the_ops_job_kinds():
    import chalicelib.handlers.jobs  # noqa: F401 - what run_jobs imports

    assert {ops_cases.VERIFY, ops_cases.RECOUNT} <= set(job_cases.kinds())
