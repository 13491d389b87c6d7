"""Segments over HTTP: criteria checks, dynamic refresh per operator, static members, duplicates, refresh due."""
from __future__ import annotations

import pytest


def _segment(api, name, criteria=None, type_="dynamic", **extra):
    body = {"name": name, "type": type_, **extra}
    if criteria is not None:
        body["criteria"] = criteria
    response = api.post("/v1/segments", body)
    assert response.status_code == 201, response.data
    return response.data


def _when(field, operator, value=None, match="all"):
    condition = {"field": field, "operator": operator}
    if operator not in ("is_null", "is_not_null"):
        condition["value"] = value
    return {"match": match, "conditions": [condition]}


def _members(api, segment_id):
    return sorted(m["name"] for m in api.get(f"/v1/segments/{segment_id}/members").data["items"])


@pytest.fixture
def clients(api):
    """Four clients with different tiers, tags, terms, countries and emails."""
    made = {}
    for body in (
        {"name": "Alpha", "pricing_tier": "vip", "tags": ["festival"], "payment_terms_days": 14,
         "email": "ops@alpha.test", "addresses": [{"kind": "billing", "country": "NL"}]},
        {"name": "Bravo", "pricing_tier": "standard", "tags": ["theatre", "Festival"], "payment_terms_days": 30,
         "addresses": [{"kind": "visiting", "country": "DE"}, {"kind": "billing", "country": "NL"}]},
        {"name": "Charlie", "pricing_tier": "preferred", "payment_terms_days": 60, "email": "c@charlie.test"},
        {"name": "Delta", "type": "venue", "pricing_tier": "standard", "payment_terms_days": 45},
    ):
        made[body["name"]] = api.post("/v1/clients", body).data
    return made


OPERATOR_CASES = [
    (_when("pricing_tier", "equals", "vip"), ["Alpha"]),
    (_when("pricing_tier", "not_equals", "standard"), ["Alpha", "Charlie"]),
    (_when("name", "contains", "RAV"), ["Bravo"]),
    (_when("tags", "contains", "festival"), ["Alpha", "Bravo"]),
    (_when("payment_terms_days", "greater_than", 30), ["Charlie", "Delta"]),
    (_when("payment_terms_days", "less_than", 30), ["Alpha"]),
    (_when("pricing_tier", "in", ["vip", "preferred"]), ["Alpha", "Charlie"]),
    (_when("type", "not_in", ["company"]), ["Delta"]),
    (_when("email", "is_null"), ["Bravo", "Delta"]),
    (_when("email", "is_not_null"), ["Alpha", "Charlie"]),
    (_when("country", "equals", "nl"), ["Alpha", "Bravo"]),
]


def test_a_dynamic_segment_selects_the_clients_each_operator_names(api, clients):
    for n, (criteria, expected) in enumerate(OPERATOR_CASES):
        segment = _segment(api, f"Picked {n}", criteria)
        assert segment["client_count"] == len(expected) and segment["last_refreshed_at"] is not None, criteria
        assert _members(api, segment["id"]) == expected, criteria
        listed = api.get(f"/v1/clients?segment_id={segment['id']}").data["items"]
        assert [c["name"] for c in listed] == expected, criteria


def test_match_any_and_all_combine_conditions(api, clients):
    conditions = [{"field": "pricing_tier", "operator": "equals", "value": "vip"},
                  {"field": "type", "operator": "equals", "value": "venue"}]
    assert _members(api, _segment(api, "Any", {"match": "any", "conditions": conditions})["id"]) == ["Alpha", "Delta"]
    assert _members(api, _segment(api, "All", {"match": "all", "conditions": conditions})["id"]) == []


def test_refresh_applies_changes_as_diffs_and_keeps_earlier_members(api, clients):
    segment = _segment(api, "VIPs", _when("pricing_tier", "equals", "vip"), refresh_frequency="manual")
    first_added = api.get(f"/v1/segments/{segment['id']}/members").data["items"][0]
    api.patch(f"/v1/clients/{clients['Charlie']['id']}", {"pricing_tier": "vip"})
    api.patch(f"/v1/clients/{clients['Alpha']['id']}", {"name": "Alpha Group"})
    refreshed = api.post(f"/v1/segments/{segment['id']}/refresh")
    assert refreshed.status_code == 200 and refreshed.data["client_count"] == 2
    items = {m["client_id"]: m for m in api.get(f"/v1/segments/{segment['id']}/members").data["items"]}
    assert items[clients["Alpha"]["id"]]["added_at"] == first_added["added_at"]  # kept, not re-inserted
    assert items[clients["Charlie"]["id"]]["added_method"] == "automatic"
    api.post(f"/v1/clients/{clients['Alpha']['id']}/archive")
    assert api.post(f"/v1/segments/{segment['id']}/refresh").data["client_count"] == 1


def test_bad_criteria_are_422_naming_the_part_and_create_nothing(api):
    for criteria, field in (
        (_when("shoe_size", "equals", 3), "criteria.conditions.0.field"),
        (_when("name", "resembles", "x"), "criteria.conditions.0.operator"),
        (_when("payment_terms_days", "greater_than", "soon"), "criteria.conditions.0.value"),
        (_when("pricing_tier", "equals", "gold"), "criteria.conditions.0.value"),
        (_when("email", "is_null", "x") | {"conditions": [{"field": "email", "operator": "is_null", "value": "x"}]},
         "criteria.conditions.0.value"),
        ({"match": "all", "conditions": []}, "criteria.conditions"),
        (_when("custom_fields.shoe", "equals", "x"), "criteria.conditions.0.field"),
    ):
        response = api.post("/v1/segments", {"name": "Bad", "type": "dynamic", "criteria": criteria})
        assert response.status_code == 422, criteria
        assert field in [d["field"] for d in response.data["error"]["details"]], response.data
    assert api.post("/v1/segments", {"name": "No criteria", "type": "dynamic"}).status_code == 422
    assert api.post("/v1/segments", {"name": "Static", "type": "static",
                                     "criteria": _when("name", "equals", "x")}).status_code == 422
    assert api.get("/v1/segments").data["items"] == []


def test_criteria_may_use_custom_fields(api):
    api.post("/v1/settings/custom-fields", {"key": "venue_size", "label": "Venue size", "type": "number"})
    api.post("/v1/clients", {"name": "Big", "custom_fields": {"venue_size": 5000}})
    api.post("/v1/clients", {"name": "Small", "custom_fields": {"venue_size": 80}})
    segment = _segment(api, "Big venues", _when("custom_fields.venue_size", "greater_than", 1000))
    assert _members(api, segment["id"]) == ["Big"]


def test_a_static_segment_skips_duplicates_and_removes_members(api, clients):
    segment = _segment(api, "Hand picked", type_="static")
    path = f"/v1/segments/{segment['id']}/members"
    first = api.post(path, {"client_id": clients["Alpha"]["id"]})
    assert first.status_code == 201 and first.data["added_method"] == "manual" and first.data["added_by"] == "user-1"
    again = api.post(path, {"client_id": clients["Alpha"]["id"]})
    assert again.status_code == 200 and again.data["added_at"] == first.data["added_at"]
    api.post(path, {"client_id": clients["Bravo"]["id"]})
    assert api.get(f"/v1/segments/{segment['id']}").data["client_count"] == 2
    assert _members(api, segment["id"]) == ["Alpha", "Bravo"]
    assert api.call("DELETE", f"{path}/{clients['Alpha']['id']}").status_code == 204
    assert api.call("DELETE", f"{path}/{clients['Alpha']['id']}").status_code == 404
    assert api.get(f"/v1/segments/{segment['id']}").data["client_count"] == 1
    assert api.post(path, {"client_id": "nope"}).status_code == 422


def test_members_cannot_be_added_to_a_dynamic_segment(api, clients):
    segment = _segment(api, "VIPs", _when("pricing_tier", "equals", "vip"))
    response = api.post(f"/v1/segments/{segment['id']}/members", {"client_id": clients["Delta"]["id"]})
    assert response.status_code == 409 and response.data["error"]["code"] == "dynamic_segment"
    assert _members(api, segment["id"]) == ["Alpha"]


def test_duplicate_copies_a_static_segments_members_and_a_dynamic_ones_criteria(api, clients):
    static = _segment(api, "Hand picked", type_="static", color="#FF5733")
    for name in ("Alpha", "Delta"):
        api.post(f"/v1/segments/{static['id']}/members", {"client_id": clients[name]["id"]})
    copy = api.post(f"/v1/segments/{static['id']}/duplicate", {"name": "Hand picked 2"})
    assert copy.status_code == 201 and copy.data["id"] != static["id"] and copy.data["slug"] == "hand-picked-2"
    assert copy.data["color"] == "#FF5733" and copy.data["client_count"] == 2
    assert _members(api, copy.data["id"]) == ["Alpha", "Delta"]
    dynamic = _segment(api, "VIPs", _when("pricing_tier", "equals", "vip"))
    twin = api.post(f"/v1/segments/{dynamic['id']}/duplicate", {"name": "VIPs again"}).data
    assert twin["criteria"] == dynamic["criteria"] and _members(api, twin["id"]) == ["Alpha"]


def test_a_client_lists_its_segments(api, clients):
    vip = _segment(api, "VIPs", _when("pricing_tier", "equals", "vip"))
    picked = _segment(api, "Picked", type_="static")
    api.post(f"/v1/segments/{picked['id']}/members", {"client_id": clients["Alpha"]["id"]})
    names = [g["name"] for g in api.get(f"/v1/clients/{clients['Alpha']['id']}/segments").data["items"]]
    assert names == ["Picked", "VIPs"]
    api.call("DELETE", f"/v1/segments/{picked['id']}")
    names = [g["name"] for g in api.get(f"/v1/clients/{clients['Alpha']['id']}/segments").data["items"]]
    assert names == ["VIPs"] and vip


def test_needs_refresh_follows_the_frequency(api):
    hourly = _segment(api, "Hourly", _when("name", "is_not_null"), refresh_frequency="hourly")
    manual = _segment(api, "Manual", _when("name", "is_not_null"), refresh_frequency="manual")
    static = _segment(api, "Static", type_="static")
    assert hourly["needs_refresh"] is False  # just filled
    assert manual["needs_refresh"] is False and static["needs_refresh"] is False
    assert static["refresh_frequency"] == "manual"


def test_system_segments_cannot_be_deleted_and_type_never_changes(api):
    system = _segment(api, "Everyone", _when("name", "is_not_null"), is_system=True)
    response = api.call("DELETE", f"/v1/segments/{system['id']}")
    assert response.status_code == 409 and response.data["error"]["code"] == "system_segment"
    assert api.patch(f"/v1/segments/{system['id']}", {"type": "static"}).status_code == 422
    assert api.as_(roles=("manager",)).post("/v1/segments", {"name": "S", "type": "static",
                                                               "is_system": True}).status_code == 403
    assert api.as_(roles=("manager",)).call("DELETE", f"/v1/segments/{system['id']}").status_code == 403


def test_changing_criteria_refreshes_at_once(api, clients):
    segment = _segment(api, "Tier", _when("pricing_tier", "equals", "vip"))
    changed = api.patch(f"/v1/segments/{segment['id']}", {"criteria": _when("pricing_tier", "equals", "preferred")})
    assert changed.status_code == 200 and changed.data["client_count"] == 1
    assert _members(api, segment["id"]) == ["Charlie"]
    bad = api.patch(f"/v1/segments/{segment['id']}", {"criteria": _when("pricing_tier", "equals", "gold")})
    assert bad.status_code == 422 and api.get(f"/v1/segments/{segment['id']}").data["criteria"] == \
        changed.data["criteria"]


def test_another_tenant_sees_no_segment(api, clients):
    segment = _segment(api, "VIPs", _when("pricing_tier", "equals", "vip"))
    other = api.as_("t2")
    assert other.get(f"/v1/segments/{segment['id']}").status_code == 404
    assert other.get(f"/v1/segments/{segment['id']}/members").status_code == 404
    assert other.get("/v1/segments").data["items"] == []
