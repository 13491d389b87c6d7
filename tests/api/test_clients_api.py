"""/v1/clients through the real app: create, read, list filters and sorts, pagination, chips, archive/restore."""
from __future__ import annotations

import re
import time
from datetime import datetime

import pytest

NUMBER = re.compile(r"^CLT-(\d{4})-(\d{6})[0-9a-f]{4}$")
CONTRACT_FIELDS = {
    "id", "client_number", "type", "name", "status", "email", "phone", "fax", "website", "industry",
    "registration_number", "vat_number", "addresses", "pricing_tier", "price_multiplier", "currency",
    "credit_limit", "payment_terms_days", "discount_percent", "tax_exempt", "tax_rate_override",
    "communication_preference", "tags", "category_ids", "custom_fields", "pipeline_stage", "node_client_id",
    "node_url", "primary_contact", "health_score", "risk_level", "churn_probability", "at_risk",
    "lead_classification", "lifetime_revenue", "outstanding_balance", "projects_count", "last_project_at",
    "last_contacted_at", "avg_response_time_minutes", "version", "created_at", "updated_at", "archived_at",
    "created_by",
}


def create(api, name="Acme", **fields):  # namesakes too: these tests are not about duplicates
    response = api.post("/v1/clients?allow_duplicate=true", {"name": name, **fields})
    assert response.status_code == 201, response.data
    return response.data


def names(api, query=""):
    response = api.get(f"/v1/clients{query}")
    assert response.status_code == 200, response.data
    return [c["name"] for c in response.data["items"]]


def chips(api):
    response = api.get("/v1/clients/chips")
    assert response.status_code == 200, response.data
    return response.data


def walk(api, query, limit):
    """Every page of a list, following next_cursor to the end."""
    pages, cursor = [], None
    while True:
        sep = "&" if query else ""
        url = f"/v1/clients?{query}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = api.get(url)
        assert response.status_code == 200, response.data
        pages.append([c["name"] for c in response.data["items"]])
        cursor = response.data["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "pagination does not end"


# --- create and read ---------------------------------------------------------------------------------

def test_create_answers_201_with_every_contract_field_and_the_defaults(api):
    client = create(api, "Acme Events")
    assert CONTRACT_FIELDS <= client.keys()
    assert (client["type"], client["status"], client["pricing_tier"]) == ("company", "active", "standard")
    assert (client["health_score"], client["risk_level"], client["at_risk"]) == (70, "low", False)
    assert client["price_multiplier"] == "1.00"
    assert (client["currency"], client["payment_terms_days"], client["tax_rate_override"]) == ("EUR", 30, "0.00")
    assert client["lifetime_revenue"] == client["outstanding_balance"] == "0.00"
    assert client["communication_preference"] == "email" and client["tax_exempt"] is False
    assert client["tags"] == [] and client["addresses"] == [] and client["custom_fields"] == {}
    assert client["primary_contact"] is None and client["archived_at"] is None
    assert client["version"] == 1 and client["created_by"] == "user-1"
    assert client["created_at"].endswith("Z") and client["updated_at"] == client["created_at"]


def test_a_created_client_answers_its_scores_as_the_rescore_computes_them(api):
    client = create(api, "Acme Events", email="info@acme.test", industry="events")
    assert (client["churn_probability"], client["lead_classification"]) == (0.0474, "cold")
    assert api.post(f"/v1/clients/{client['id']}/lead-score/recalculate").status_code == 200
    assert api.get(f"/v1/clients/{client['id']}").data == client  # the stream's rescore changes nothing


def test_client_number_carries_the_creation_year_and_time(api):
    client = create(api)
    match = NUMBER.match(client["client_number"])
    assert match, client["client_number"]
    created = datetime.fromisoformat(client["created_at"].replace("Z", "+00:00"))
    assert match.group(1) == f"{created:%Y}" and match.group(2) == f"{created:%H%M%S}"


def test_twenty_creates_give_twenty_distinct_numbers(api):
    numbers = [create(api, f"Client {i}")["client_number"] for i in range(20)]
    assert len(set(numbers)) == 20
    assert all(NUMBER.match(n) for n in numbers)


def test_money_is_answered_as_decimal_strings(api):
    client = create(api, credit_limit="1250", discount_percent=5.5, tax_rate_override="21")
    assert (client["credit_limit"], client["discount_percent"], client["tax_rate_override"]) == \
        ("1250.00", "5.50", "21.00")


def test_created_client_reads_back_as_answered(api):
    client = create(api, "Acme", email="info@acme.test", tags=["gold"], type="venue",
                    addresses=[{"kind": "billing", "city": "Ghent", "country": "be"}])
    response = api.get(f"/v1/clients/{client['id']}")
    assert response.status_code == 200
    assert response.data == client
    assert client["addresses"][0]["country"] == "BE"


INVALID_CREATES = [
    ({}, "name"), ({"name": "  "}, "name"), ({"name": "A", "email": "not-an-email"}, "email"),
    ({"name": "A", "type": "person"}, "type"), ({"name": "A", "currency": "EURO"}, "currency"),
    ({"name": "A", "addresses": [{"kind": "home"}]}, "addresses.0.kind"),
    ({"name": "A", "addresses": [{"kind": "billing", "country": "XX"}]}, "addresses.0.country"),
    ({"name": "A", "status": "archived"}, "status"), ({"name": "A", "credit_limit": "-1"}, "credit_limit"),
    ({"name": "A", "payment_terms_days": "soon"}, "payment_terms_days"), ({"name": "A", "tags": "gold"}, "tags"),
]


def test_invalid_create_is_422_naming_the_field_and_creates_nothing(api):
    for body, field in INVALID_CREATES:
        response = api.post("/v1/clients", body)
        assert response.status_code == 422, body
        assert response.data["error"]["code"] == "validation_error"
        assert field in [d["field"] for d in response.data["error"]["details"]], (body, response.data)
    assert names(api) == []
    assert chips(api)["all"] == 0


def test_tier_sets_the_price_multiplier(api):
    for tier, multiplier in [("standard", "1.00"), ("preferred", "0.95"), ("vip", "0.90")]:
        assert create(api, pricing_tier=tier)["price_multiplier"] == multiplier


def test_custom_tier_requires_its_own_multiplier(api):
    response = api.post("/v1/clients", {"name": "A", "pricing_tier": "custom"})
    assert response.status_code == 422
    assert [d["field"] for d in response.data["error"]["details"]] == ["price_multiplier"]
    assert create(api, pricing_tier="custom", price_multiplier="1.15")["price_multiplier"] == "1.15"


def test_patch_to_vip_recomputes_the_multiplier_and_bumps_the_version(api):
    client = create(api)
    response = api.patch(f"/v1/clients/{client['id']}", {"pricing_tier": "vip"})
    assert response.status_code == 200
    assert (response.data["price_multiplier"], response.data["version"]) == ("0.90", 2)
    assert response.data["updated_at"] >= client["updated_at"]


def test_patching_a_required_field_to_null_is_422_and_changes_nothing(api):
    client = create(api)
    for field in ["name", "status", "pricing_tier", "type", "currency", "tax_exempt"]:
        response = api.patch(f"/v1/clients/{client['id']}", {field: None})
        assert response.status_code == 422, field
        assert [d["field"] for d in response.data["error"]["details"]] == [field]
    assert api.get(f"/v1/clients/{client['id']}").data == client


def test_client_number_can_never_change(api):
    client = create(api)
    response = api.patch(f"/v1/clients/{client['id']}", {"client_number": "CLT-2020-000000abcd"})
    assert response.status_code == 422
    assert [d["field"] for d in response.data["error"]["details"]] == ["client_number"]
    assert api.get(f"/v1/clients/{client['id']}").data["client_number"] == client["client_number"]


def test_unknown_client_is_404(api):
    response = api.get("/v1/clients/01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert response.status_code == 404 and response.data["error"]["code"] == "not_found"


# --- archive and restore -----------------------------------------------------------------------------

def test_archived_client_leaves_default_list_and_chips_but_stays_readable(api):
    keep, gone = create(api, "Keep"), create(api, "Gone", pricing_tier="vip")
    response = api.post(f"/v1/clients/{gone['id']}/archive")
    assert response.status_code == 200
    assert response.data["status"] == "archived" and response.data["archived_at"].endswith("Z")
    assert names(api) == ["Keep"]
    assert chips(api)["all"] == 1 and chips(api)["vip"] == 0 and chips(api)["new"] == 1
    assert api.get(f"/v1/clients/{gone['id']}").data["status"] == "archived"
    assert names(api, "?status=archived") == ["Gone"]
    assert keep["id"] != gone["id"]


def test_restore_returns_the_status_held_before_archive(api):
    client = create(api, status="inactive")
    api.post(f"/v1/clients/{client['id']}/archive")
    response = api.post(f"/v1/clients/{client['id']}/restore")
    assert response.status_code == 200
    assert response.data["status"] == "inactive" and response.data["archived_at"] is None
    assert response.data["client_number"] == client["client_number"]
    assert names(api, "?status=inactive") == ["Acme"]
    assert names(api, "?status=archived") == []


def test_archive_and_restore_bump_the_version(api):
    client = create(api)
    assert api.post(f"/v1/clients/{client['id']}/archive").data["version"] == 2
    assert api.post(f"/v1/clients/{client['id']}/restore").data["version"] == 3


def test_archiving_an_unknown_client_is_404(api):
    assert api.post("/v1/clients/nope/archive").status_code == 404
    assert api.post("/v1/clients/nope/restore").status_code == 404


# --- chips -------------------------------------------------------------------------------------------

def test_chips_of_a_new_tenant_are_all_zero(api):
    assert chips(api) == {"all": 0, "vip": 0, "high_value": 0, "at_risk": 0, "new": 0, "inactive": 0}


def test_chips_follow_create_archive_restore_and_status_changes(api):
    a = create(api, "A", pricing_tier="vip")
    b = create(api, "B", status="inactive")
    c = create(api, "C")
    assert chips(api) == {"all": 3, "vip": 1, "high_value": 0, "at_risk": 0, "new": 3, "inactive": 1}
    api.post(f"/v1/clients/{a['id']}/archive")
    api.post(f"/v1/clients/{b['id']}/archive")
    assert chips(api) == {"all": 1, "vip": 0, "high_value": 0, "at_risk": 0, "new": 1, "inactive": 0}
    api.post(f"/v1/clients/{b['id']}/restore")
    assert chips(api)["inactive"] == 1 and chips(api)["all"] == 2
    assert api.patch(f"/v1/clients/{c['id']}", {"status": "inactive"}).status_code == 200
    assert chips(api)["inactive"] == 2
    api.patch(f"/v1/clients/{c['id']}", {"pricing_tier": "vip"})
    api.post(f"/v1/clients/{a['id']}/restore")
    assert chips(api) == {"all": 3, "vip": 2, "high_value": 0, "at_risk": 0, "new": 3, "inactive": 2}


# --- list filters ------------------------------------------------------------------------------------

@pytest.fixture
def book(api):
    """A small client book: statuses, types, tiers and tags to filter on."""
    made = {
        "Acme Events": create(api, "Acme Events", email="info@acme.test", pricing_tier="vip", tags=["Gold"]),
        "Beta Venue": create(api, "Beta Venue", type="venue", email="hello@BETA.test", status="lead"),
        "Carl Smith": create(api, "Carl Smith", type="individual", status="inactive", tags=["gold", "north"]),
        "Delta Corp": create(api, "Delta Corp", pricing_tier="preferred", status="trial"),
        "Echo Old": create(api, "Echo Old", pricing_tier="vip", tags=["Gold"]),
    }
    api.post(f"/v1/clients/{made['Echo Old']['id']}/archive")
    return made


def test_default_list_excludes_archived_clients_and_sorts_by_name(api, book):
    assert names(api) == ["Acme Events", "Beta Venue", "Carl Smith", "Delta Corp"]


FILTER_CASES = {
    "?status=lead": ["Beta Venue"],
    "?status=lead,inactive": ["Beta Venue", "Carl Smith"],
    "?status=active,archived": ["Acme Events", "Echo Old"],
    "?type=venue": ["Beta Venue"],
    "?type=company": ["Acme Events", "Delta Corp"],
    "?type=individual,venue": ["Beta Venue", "Carl Smith"],
    "?pricing_tier=vip": ["Acme Events"],
    "?pricing_tier=vip,preferred": ["Acme Events", "Delta Corp"],
    "?risk_level=low": ["Acme Events", "Beta Venue", "Carl Smith", "Delta Corp"],
    "?risk_level=high": [],
    "?tag=Gold": ["Acme Events", "Carl Smith"],
    "?tag=north": ["Carl Smith"],
    "?chip=all": ["Acme Events", "Beta Venue", "Carl Smith", "Delta Corp"],
    "?chip=vip": ["Acme Events"],
    "?chip=inactive": ["Carl Smith"],
    "?chip=new": ["Acme Events", "Beta Venue", "Carl Smith", "Delta Corp"],
    "?chip=at_risk": [],
    "?chip=high_value": [],
    "?status=inactive&type=individual&tag=north": ["Carl Smith"],
    "?pricing_tier=vip&status=active,archived": ["Acme Events", "Echo Old"],
    "?chip=vip&tag=gold&sort=-name": ["Acme Events"],
}


def test_list_filters_each_narrow_the_book(api, book):
    answered = {query: names(api, query) for query in FILTER_CASES}
    assert answered == FILTER_CASES


SEARCH_CASES = {
    "acme": ["Acme Events"], "ACME%20EV": ["Acme Events"], "beta.TEST": ["Beta Venue"], "smi": ["Carl Smith"],
    "r": ["Carl Smith", "Delta Corp"], "zzz": [], "info@": ["Acme Events"],
}


def test_q_searches_name_and_email_case_insensitively(api, book):
    answered = {q: names(api, f"?q={q}") for q in SEARCH_CASES}
    assert answered == SEARCH_CASES


def test_q_finds_a_client_by_part_of_its_number_in_any_case(api, book):
    number = book["Delta Corp"]["client_number"]
    assert names(api, f"?q={number.lower()}") == ["Delta Corp"]
    assert names(api, f"?q={number[-8:].upper()}") == ["Delta Corp"]


def test_q_keeps_archived_clients_out_by_default(api, book):
    assert names(api, "?q=echo") == []
    assert names(api, "?q=echo&status=archived") == ["Echo Old"]


def test_bad_filter_values_are_400_bad_request(api):
    for query in ["?status=gone", "?status=", "?type=person", "?pricing_tier=gold", "?risk_level=extreme",
                  "?chip=hot", "?sort=email", "?sort=-status"]:
        response = api.get(f"/v1/clients{query}")
        assert (response.status_code, response.data["error"]["code"]) == (400, "bad_request"), query


# --- sorts -------------------------------------------------------------------------------------------

@pytest.fixture
def sortable(api):
    made = []
    for name in ["beta", "Alpha", "gamma", "Delta", "alpha two"]:
        made.append(create(api, name))
        time.sleep(0.003)  # distinct created_at milliseconds
    return made


def test_sort_by_name_ascending_and_descending_ignores_case(api, sortable):
    assert names(api, "?sort=name") == ["Alpha", "alpha two", "beta", "Delta", "gamma"]
    assert names(api, "?sort=-name") == ["gamma", "Delta", "beta", "alpha two", "Alpha"]


def test_sort_by_created_at_ascending_and_descending(api, sortable):
    in_order = [c["name"] for c in sortable]
    assert names(api, "?sort=created_at") == in_order
    assert names(api, "?sort=-created_at") == in_order[::-1]


def test_sort_by_health_score(api, sortable):
    for sort in ("health_score", "-health_score"):
        items = api.get(f"/v1/clients?sort={sort}").data["items"]
        scores = [c["health_score"] for c in items]
        assert scores == sorted(scores, reverse=sort.startswith("-"))
        assert sorted(c["name"] for c in items) == sorted(c["name"] for c in sortable)


# --- pagination --------------------------------------------------------------------------------------

@pytest.fixture
def seven(api):
    statuses = ["active", "inactive", "lead", "active", "inactive", "active", "trial"]
    made = []
    for i, status in enumerate(statuses):
        made.append(create(api, f"Client {chr(ord('G') - i)}", status=status))
        time.sleep(0.002)
    return made


def test_paging_seven_clients_by_three_has_no_duplicates_or_gaps(api, seven):
    for query in ["", "sort=-name", "sort=created_at", "sort=-created_at", "sort=health_score"]:
        pages = walk(api, query, 3)
        assert [len(p) for p in pages] == [3, 3, 1], query
        flat = [n for p in pages for n in p]
        assert flat == names(api, f"?{query}&limit=100" if query else "?limit=100"), query
        assert sorted(flat) == sorted(c["name"] for c in seven), query


def test_paging_a_union_of_statuses_merges_their_orders(api, seven):
    pages = walk(api, "status=active,inactive", 2)
    flat = [n for p in pages for n in p]
    expected = sorted(c["name"] for c in seven if c["status"] in ("active", "inactive"))
    assert flat == expected and [len(p) for p in pages] == [2, 2, 1]
    pages = walk(api, "status=active,inactive&q=client&sort=-created_at", 2)
    newest_first = [c["name"] for c in reversed(seven) if c["status"] in ("active", "inactive")]
    assert [n for p in pages for n in p] == newest_first


def test_paging_with_search_descending_sort_and_chips(api, seven):
    pages = walk(api, "q=client&sort=-name", 3)
    assert [n for p in pages for n in p] == sorted((c["name"] for c in seven), reverse=True)
    pages = walk(api, "chip=new&sort=health_score", 4)
    assert sorted(n for p in pages for n in p) == sorted(c["name"] for c in seven)
    assert [len(p) for p in pages] == [4, 3]


def test_a_last_page_that_is_exactly_full_has_no_next_cursor(api):
    for i in range(6):
        create(api, f"C{i}")
    pages = walk(api, "", 3)
    assert [len(p) for p in pages] == [3, 3]
