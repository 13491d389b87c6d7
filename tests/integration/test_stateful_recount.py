"""Hypothesis stateful test on DynamoDB Local: random client, contact and communication changes, their stream
records delivered once, twice, out of order and late; after every step every derived figure equals a recount."""
from __future__ import annotations

import os
import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import app as app_module
from tests.audit import assert_consistent

pytestmark = pytest.mark.ddb

SOAK = os.environ.get("SOAK") == "1"
EXAMPLES = int(os.environ.get("STATEFUL_EXAMPLES", 150 if SOAK else 8))
STEPS = int(os.environ.get("STATEFUL_STEPS", 30 if SOAK else 8))
FIGURES = Counter()  # steps run, records delivered, replays

# How a step's stream records reach the handler (Lambda delivers at least once, and retries from a failed record).
DELIVERIES = st.sampled_from(["once", "twice", "reversed", "tail first", "twice at once"])
TIERS = st.sampled_from(["standard", "vip"])


class Recount(RuleBasedStateMachine):
    """One tenant per example; its categories, clients, contacts and communications as the machine made them."""

    api = None
    stream = None
    tenant_no = 0

    def __init__(self) -> None:
        super().__init__()
        Recount.tenant_no += 1
        self.tenant = f"h{Recount.tenant_no}"
        self.http = Recount.api.as_(self.tenant)
        self.clients: list[str] = []
        self.contacts: dict[str, list[str]] = {}
        self.history: list[list[dict]] = []  # every batch taken from the stream so far
        self.categories: list[str] = []

    def _ok(self, method: str, path: str, body=None, status: int = 200) -> dict:
        answer = self.http.call(method, path, body)
        assert answer.status_code == status, (method, path, answer.data)
        return answer.data

    def _deliver(self, how: str) -> None:
        """This step's records as drawn, then every later hop once (counts follow one hop later)."""
        batch = self.stream.take()
        if not batch:
            return
        self.history.append(batch)
        cut = len(batch) // 2
        plans = {"once": [batch], "twice": [batch, batch], "reversed": [batch[::-1]],
                 "tail first": [batch[cut:], batch], "twice at once": [batch, batch]}[how]
        if how == "twice at once":
            from tests.integration.test_concurrent_writes import parallel

            results = parallel([lambda: app_module.on_table_stream({"Records": batch}, None)] * 2)
        else:
            results = [app_module.on_table_stream({"Records": p}, None) for p in plans]
        assert all(r == {"batchItemFailures": []} for r in results), results
        FIGURES["records delivered"] += sum(len(p) for p in plans)
        FIGURES["replays"] += len(plans) - 1
        self.stream.settle()

    @initialize()
    def categories_exist(self) -> None:
        self.stream.take()  # records of earlier examples' tenants are not this example's
        self.categories = [self._ok("POST", "/v1/categories", {"name": n}, 201)["id"] for n in ("Venues", "Food")]
        self._deliver("once")

    @rule(tier=TIERS, cats=st.lists(st.sampled_from([0, 1]), unique=True), how=DELIVERIES)
    def create_client(self, tier, cats, how) -> None:
        client = self._ok("POST", "/v1/clients", {"name": f"C{len(self.clients)}", "pricing_tier": tier,
                                                  "category_ids": [self.categories[c] for c in cats]}, 201)
        self.clients.append(client["id"])
        self.contacts[client["id"]] = []
        self._deliver(how)

    @precondition(lambda self: self.clients)
    @rule(data=st.data(), tier=TIERS, cats=st.lists(st.sampled_from([0, 1]), unique=True),
          tags=st.lists(st.sampled_from(["hot", "cold"]), unique=True), how=DELIVERIES)
    def change_client(self, data, tier, cats, tags, how) -> None:
        cid = data.draw(st.sampled_from(self.clients))
        self._ok("PATCH", f"/v1/clients/{cid}", {"pricing_tier": tier, "tags": tags,
                                                 "category_ids": [self.categories[c] for c in cats]})
        self._deliver(how)

    @precondition(lambda self: self.clients)
    @rule(data=st.data(), archive=st.booleans(), how=DELIVERIES)
    def archive_or_restore(self, data, archive, how) -> None:
        cid = data.draw(st.sampled_from(self.clients))
        self._ok("POST", f"/v1/clients/{cid}/{'archive' if archive else 'restore'}")
        self._deliver(how)

    @precondition(lambda self: self.clients)
    @rule(data=st.data(), how=DELIVERIES)
    def add_contact(self, data, how) -> None:
        cid = data.draw(st.sampled_from(self.clients))
        n = sum(map(len, self.contacts.values()))
        contact = self._ok("POST", f"/v1/clients/{cid}/contacts", {"full_name": f"Pat {n}",
                                                                   "email": f"pat{n}@{self.tenant}.test"}, 201)
        self.contacts[cid].append(contact["id"])
        self._deliver(how)

    @precondition(lambda self: any(self.contacts.values()))
    @rule(data=st.data(), delete=st.booleans(), how=DELIVERIES)
    def make_primary_or_delete_a_contact(self, data, delete, how) -> None:
        cid = data.draw(st.sampled_from([c for c, ks in self.contacts.items() if ks]))
        kid = data.draw(st.sampled_from(self.contacts[cid]))
        path = f"/v1/clients/{cid}/contacts/{kid}"
        if delete:
            answer = self.http.call("DELETE", path)
            assert answer.status_code in (204, 409), answer.data  # 409: the rule that keeps a primary contact
            if answer.status_code == 204:
                self.contacts[cid].remove(kid)
        else:
            self._ok("POST", path + "/make-primary")
        self._deliver(how)

    @precondition(lambda self: self.clients)
    @rule(data=st.data(), inbound=st.booleans(), day=st.integers(1, 9), how=DELIVERIES)
    def log_communication(self, data, inbound, day, how) -> None:
        cid = data.draw(st.sampled_from(self.clients))
        self._ok("POST", f"/v1/clients/{cid}/communications", {
            "type": "email", "direction": "inbound" if inbound else "outbound", "subject": "Quote",
            "body": "About May", "from_email": "jo@client.test", "to_email": "office@acme.test",
            "occurred_at": f"2026-11-0{day}T10:00:00Z"}, 201)
        self._deliver(how)

    @precondition(lambda self: self.history)
    @rule(data=st.data())
    def a_late_redelivery_of_an_old_batch(self, data) -> None:
        batch = data.draw(st.sampled_from(self.history))
        shuffled = random.Random(data.draw(st.integers(0, 99))).sample(batch, len(batch))
        assert app_module.on_table_stream({"Records": shuffled}, None) == {"batchItemFailures": []}
        FIGURES["replays"] += 1
        self.stream.settle()

    @invariant()
    def every_derived_figure_equals_a_recount(self) -> None:
        FIGURES["steps"] += 1
        assert_consistent(self.tenant)


def test_random_interleavings_with_stream_redeliveries_keep_every_figure_equal_to_a_recount(ddb_api, stream):
    Recount.api, Recount.stream = ddb_api, stream
    run_state_machine_as_test(Recount, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))



@pytest.fixture(scope="module", autouse=True)
def report_figures():
    """The module's figures, printed at its end (seen with -s, or in a soak's log) for SECURITY.md."""
    yield
    print(f"\n{__name__}: {dict(FIGURES)}")
