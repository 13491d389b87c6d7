"""`q` on clients and tenant contacts on DynamoDB Local: the substring meaning kept, reads bounded by the matches."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ulid import ULID

from chalicelib.domain.clients import FacetRules, new_client
from chalicelib.domain.search import MAX_TERMS, fold, grams, query_terms
from chalicelib.domain.settings import ClientSettings
from chalicelib.tables import clients as clients_table
from chalicelib.tables.clients import ClientRepository
from tests.ddb_local import own_ddb_endpoint
from tests.dynamo_calls import recorded

# Hundreds of clients a test: each its own DynamoDB Local, the session's stays fast (see tests/ddb_local.py).
ddb_endpoint = pytest.fixture(scope="function")(own_ddb_endpoint)


@pytest.fixture
def api(ddb_api):
    """Seeding hundreds of clients on moto is quadratic (it copies the table per transaction): DynamoDB Local."""
    return ddb_api


WORDS = ["harbor", "events", "rentals", "stage", "audio", "light", "north", "studio", "media", "sound"]


def seed(n: int, tenant: str = "t1", extra: dict[int, dict] | None = None) -> list[str]:
    """n clients named from common words (client i gets extra[i] too), written as a create writes them."""
    now = datetime.now(UTC)
    made = []
    for i in range(n):
        fields = {"name": f"{WORDS[i % 10].title()} {WORDS[(i // 10) % 10].title()} {i}", **(extra or {}).get(i, {})}
        made.append(new_client(fields, tenant_id=tenant, client_id=str(ULID()), settings=ClientSettings(),
                               custom_fields=[], actor="u", now=now))
    repo = ClientRepository(tenant)
    return [c.id for c in repo.create_many(made, FacetRules.of(ClientSettings(), now)).clients]


def names(api, query: str, limit: int = 100) -> list[str]:
    found, cursor = [], ""
    for _ in range(100):
        answer = api.get(f"/v1/clients?limit={limit}&{query}{cursor}")
        assert answer.status_code == 200, answer.body
        found += [c["name"] for c in answer.data["items"]]
        nxt = answer.data["next_cursor"]
        if not nxt:
            return found
        cursor = f"&cursor={nxt}"
    raise AssertionError("the cursor never ended")


def test_q_folds_accents_and_case_both_ways(api):
    api.post("/v1/clients", {"name": "Théâtre du Châtelet"})
    api.post("/v1/clients", {"name": "THEATRE ROYAL"})
    api.post("/v1/clients", {"name": "Opéra Bastille"})
    assert sorted(names(api, "q=theatre")) == ["THEATRE ROYAL", "Théâtre du Châtelet"]
    assert names(api, "q=TH%C3%89%C3%82TRE%20du") == ["Théâtre du Châtelet"]
    assert names(api, "q=opera") == ["Opéra Bastille"]


def test_q_matches_any_substring_of_name_number_email_and_primary_contact(api):
    client = api.post("/v1/clients", {"name": "Blue Harbor Events", "email": "desk@blueharbor.example"}).data
    api.post(f"/v1/clients/{client['id']}/contacts", {"full_name": "Zoë Kowalczyk", "email": "zoe@example.com",
                                                      "is_primary": True})
    api.post("/v1/clients", {"name": "Other"})
    number = client["client_number"]
    for q in ("arbor ev", "r Ev", "eharb", "desk@", number[-7:], number.lower(), "kowalc", "zoe kow", "Blue"):
        assert names(api, f"q={q.replace(' ', '%20').replace('@', '%40')}") == ["Blue Harbor Events"], q
    assert names(api, "q=harbour") == []


def test_q_follows_renames_and_primary_contact_changes(api):
    client = api.post("/v1/clients", {"name": "Oldname Staging"}).data
    api.patch(f"/v1/clients/{client['id']}", {"name": "Newname Staging"})
    assert names(api, "q=oldname") == [] and names(api, "q=newname") == ["Newname Staging"]
    api.post(f"/v1/clients/{client['id']}/contacts", {"full_name": "Quentin Primus", "email": "q@example.com",
                                                      "is_primary": True})
    assert names(api, "q=primus") == ["Newname Staging"]
    api.post(f"/v1/clients/{client['id']}/archive")
    assert names(api, "q=newname") == []
    assert names(api, "q=newname&status=archived") == ["Newname Staging"]


def test_a_rare_term_reads_its_matches_not_the_tenant(api):
    seed(300, extra={7: {"name": "Quokka Lighting"}, 123: {"name": "Stage Quokka Works"}})
    with recorded() as calls:
        assert sorted(names(api, "q=quokka")) == ["Quokka Lighting", "Stage Quokka Works"]
    assert calls.operations["Scan"] == 0
    # the query's 4 terms (at most 2 clients each), the overflow partition, 2 facet entries and 2 clients
    assert calls.items_read() <= 12, calls.operations


def test_a_common_term_still_finds_every_match_in_order_across_pages(api):
    seed(260)
    found = names(api, "q=harbor&sort=-name", limit=20)  # three pages
    assert len(found) == 53  # "Harbor <word> n" (26) and "<word> Harbor n" (30), three of them both
    assert found == sorted(found, key=fold, reverse=True) and len(set(found)) == 53
    assert all("harbor" in n.lower() for n in found)


def test_search_with_other_filters_and_sorts_equals_the_filtered_list(api):
    ids = seed(120, extra={i: {"pricing_tier": "vip"} for i in range(0, 120, 3)})
    assert len(ids) == 120
    everything = names(api, "pricing_tier=vip&sort=name")
    assert names(api, "q=audio&pricing_tier=vip&sort=name") == [n for n in everything if "audio" in n.lower()]
    health = names(api, "q=studio&sort=-health_score")
    assert sorted(health) == sorted(n for n in names(api, "sort=name") if "studio" in n.lower())


def test_a_query_with_no_three_letter_word_walks_a_bounded_page_at_a_time(api, monkeypatch):
    seed(60)
    monkeypatch.setattr(clients_table, "WALK_BUDGET", 25)
    first = api.get("/v1/clients?limit=100&q=o%209").data
    assert len(first["items"]) < 100 and first["next_cursor"]  # short, with a cursor
    everything = names(api, "q=o%209")
    assert sorted(everything) == sorted(n for n in names(api, "sort=name") if "o 9" in n.lower())


def test_a_client_with_more_terms_than_an_entry_budget_is_still_found(api):
    long_name = " ".join(f"word{n:03d}x" for n in range(25))  # more trigrams than MAX_TERMS, within 255 chars
    assert len(grams(fold(long_name))) > MAX_TERMS
    assert api.post("/v1/clients", {"name": long_name}).status_code == 201
    api.post("/v1/clients", {"name": "Short"})
    assert names(api, "q=word017x") == [long_name]


def test_chips_new_counts_by_creation_day_without_reading_clients(api):
    now = datetime.now(UTC)
    old = new_client({"name": "Old"}, tenant_id="t1", client_id=str(ULID()), settings=ClientSettings(),
                     custom_fields=[], actor="u", now=now - timedelta(days=45))
    repo = ClientRepository("t1")
    repo.create_many([old], FacetRules.of(ClientSettings(), now))
    fresh = api.post("/v1/clients", {"name": "Fresh"}).data
    api.post("/v1/clients", {"name": "Fresh too"})
    with recorded() as calls:
        chips = api.get("/v1/clients/chips").data
    assert chips["new"] == 2 and chips["all"] == 3
    # the counters' shards, the client settings (new_client_days) and the creation days since the cutoff
    assert calls.operations == {"BatchGetItem": 1, "GetItem": 1, "Query": 1}
    api.post(f"/v1/clients/{fresh['id']}/archive")
    assert api.get("/v1/clients/chips").data["new"] == 1
    assert names(api, "chip=new") == ["Fresh too"]


def test_a_list_page_reads_one_page_of_entries_and_its_clients_only(api):
    seed(60)
    with recorded() as calls:
        answer = api.get("/v1/clients?limit=25")
    assert len(answer.data["items"]) == 25 and answer.data["next_cursor"]
    assert calls.operations == {"Query": 1, "BatchGetItem": 1}
    query = next(params for op, params, _ in calls.made if op == "Query")
    assert query["Limit"] == 26  # the page and one more entry, to know there is a next page
    batch = next(params for op, params, _ in calls.made if op == "BatchGetItem")
    assert sum(len(t["Keys"]) for t in batch["RequestItems"].values()) == 25


@pytest.mark.parametrize("q", ["théâtre", "THEATRE", "eatr"])
def test_tenant_contact_search_folds_accents_and_finds_substrings(api, q):
    client = api.post("/v1/clients", {"name": "Venue"}).data
    api.post(f"/v1/clients/{client['id']}/contacts", {"full_name": "Ana Lopez", "email": "ana@example.com",
                                                      "job_title": "Directrice du Théâtre"})
    api.post(f"/v1/clients/{client['id']}/contacts", {"full_name": "Bob Stone", "email": "bob@example.com"})
    found = api.get(f"/v1/contacts?q={q}").data["items"]
    assert [c["full_name"] for c in found] == ["Ana Lopez"]


def test_tenant_contact_search_reads_its_matches_and_forgets_deleted_contacts(api):
    client = api.post("/v1/clients", {"name": "Venue"}).data
    made = [api.post(f"/v1/clients/{client['id']}/contacts",
                     {"full_name": f"Person {WORDS[i % 10]} {i}", "email": f"p{i}@example.com"}).data
            for i in range(40)]
    rare = api.post(f"/v1/clients/{client['id']}/contacts",
                    {"full_name": "Xanthippe Quill", "email": "xq@example.com"}).data
    with recorded() as calls:
        found = api.get("/v1/contacts?q=xanthip").data["items"]
    assert [c["id"] for c in found] == [rare["id"]]
    assert calls.items_read() <= 8, calls.operations
    assert len(api.get("/v1/contacts?q=person&limit=100").data["items"]) == 40
    assert made[0]["is_primary"]  # the first contact: the primary cannot be deleted, another can
    assert api.call("DELETE", f"/v1/clients/{client['id']}/contacts/{made[1]['id']}").status_code == 204
    assert len(api.get("/v1/contacts?q=person&limit=100").data["items"]) == 39
    assert len(query_terms("xanthip")) == 5
