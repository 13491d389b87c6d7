"""The bench's bulk loader writes what the service's create path writes: a consistent tenant the API answers."""
from __future__ import annotations

from collections import Counter

import pytest

from bench.loader import RARE_CLIENT_WORD, RARE_CONTACT_WORD, TenantPlan, load, planned
from chalicelib.domain import client_cases
from chalicelib.tables.stores import Stores
from tests.audit import assert_consistent, tenant_items
from tests.ddb_local import own_ddb_endpoint
from tests.integration.conftest import Api

# Thousands of items: this module's own DynamoDB Local keeps the session's fast (see tests/ddb_local.py).
ddb_endpoint = pytest.fixture(scope="module")(own_ddb_endpoint)


def _kinds(tenant: str) -> Counter:
    return Counter(item.serialize()["kind"]["S"] for item in tenant_items(tenant))


def _state(tenant: str) -> tuple[Counter, Counter, set[str]]:
    """What a tenant holds, shard placement aside: items by kind (search terms, counters, lookup keys and the
    `new` entries the daily prune keeps current left out), each counter's sum, and the lookup keys in use."""
    kinds: Counter = Counter()
    sums: Counter = Counter()
    held: set[str] = set()
    for item in tenant_items(tenant):
        kind = item.serialize()["kind"]["S"]
        pk = item.pk.removeprefix(f"T#{tenant}#")
        if kind in ("facet_count", "day_count"):
            sums[pk if kind == "facet_count" else item.sk.rsplit("#", 1)[0]] += int(item.n)
        elif kind == "client_key":
            held |= {pk} if item.client_ids else set()
        elif kind != "search" and not pk.endswith("#new=1"):
            kinds[kind] += 1
    return kinds, +sums, held


def test_a_loaded_tenant_passes_the_consistency_audit_and_answers_its_searches(ddb_api, ddb_table, ddb_endpoint):
    plan = TenantPlan("lt", clients=40, contacts=12)
    done = load(plan, ddb_endpoint, ddb_table, threads=2)
    assert done.items == sum(_kinds("lt").values())
    audit = assert_consistent("lt")
    assert len(audit.clients) == 40
    api = Api(ddb_api.http, tenant="lt")
    live = [c for c in audit.clients.values() if not c.is_archived]
    listed = api.get("/v1/clients?limit=100").data["items"]
    assert len(listed) == len(live) and api.get("/v1/clients/chips").data["all"] == len(live)
    rare = api.get(f"/v1/clients?q={RARE_CLIENT_WORD.lower()}").data["items"]
    planted = [c for c in live if RARE_CLIENT_WORD in c.name]
    assert len(planted) >= 1 and sorted(c["id"] for c in rare) == sorted(c.id for c in planted)
    contacts = api.get(f"/v1/contacts?q={RARE_CONTACT_WORD.lower()}").data["items"]
    assert {c["full_name"].split()[-1] for c in contacts} == {RARE_CONTACT_WORD}
    with_primary = [c for c in audit.clients.values() if c.primary_contact]
    assert len(with_primary) == 12  # each contact is the first, so the primary, of its client


def test_a_loaded_client_has_the_items_the_create_use_case_and_the_scoring_write(ddb_api, ddb_table, ddb_endpoint):
    plan = TenantPlan("one", clients=1, contacts=0)
    load(plan, ddb_endpoint, ddb_table, threads=1)
    _, at, fields, figures = planned(plan, 0)
    stores = Stores("ref", "u")
    made = client_cases.create_client(stores, fields, now=at)
    client_cases.update_derived(stores, made.id, lambda client: figures)  # what the stream's rescore leaves
    [loaded] = assert_consistent("one").clients.values()
    if loaded.is_archived:
        client_cases.archive_client(stores, made.id)
    assert _kinds("one")["search"] > 0 and _kinds("ref")["search"] > 0  # their exact terms: the audit checks
    assert _state("one") == _state("ref")
    assert_consistent("ref")
