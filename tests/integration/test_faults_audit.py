"""Faults on DynamoDB Local mid-burst (frozen, killed, throttling, conflicts, a poison record): bounded 503s or
successes, and afterwards the consistency audit finds nothing half-written."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

import app as app_module
from chalicelib.config import get_settings
from chalicelib.local.dynamodb_local import DynamoDBLocal
from chalicelib.tables import keys
from chalicelib.tables.base import TableItem, configure
from chalicelib.tables.idempotency import IdempotencyStore
from chalicelib.tables.items import ClientNumberItem, FacetCount, IdempotencyItem
from tests.api.conftest import ENV
from tests.audit import assert_consistent, audit
from tests.ddb_local import FAKE_AWS, _reset_app_caches
from tests.http_servers import serving
from tests.integration.conftest import Live, StreamTap

pytestmark = pytest.mark.ddb

FAULTS = Counter()  # faults injected by this module, by kind (printed in the session summary with -s)
BOUND = 15.0  # seconds: the longest any answer may take under these tests' settings (FUNCTION_TIMEOUT 10)


# --- the audit itself ---------------------------------------------------------------------------------------------

def test_the_audit_finds_a_counter_off_a_missing_number_item_and_a_stuck_idempotency_key(live):
    client = live.ok("POST", "/v1/clients", {"name": "Acme", "pricing_tier": "vip"}, status=201)
    assert_consistent()
    t = "t1"
    FacetCount(keys.facet_pk(t, "tier", "vip"), keys.count_sk(0)).update(
        actions=[FacetCount.n.add(1), FacetCount.kind.set(FacetCount)])
    ClientNumberItem(keys.client_number_pk(t, client["client_number"]), keys.UNIQUE_SK).delete()
    IdempotencyItem(keys.idempotency_pk(t, "stuck"), keys.UNIQUE_SK, state="pending", fingerprint="f",
                    expires_at=int(time.time()) + 60).save()
    problems = "\n".join(audit(t).problems)
    assert "counter ('tier', 'vip'): 2 stored, 1 recounted" in problems
    assert "chips" in problems and f"client {client['id']} lacks its number item" in problems
    assert "pending without a lease" in problems


# --- a DynamoDB Local of the test's own: frozen or killed mid-burst ------------------------------------------------

class Own:
    """The app over HTTP on a DynamoDB Local of its own (persistent under `db_path` when given)."""

    def __init__(self, ddb: DynamoDBLocal, live: Live, table: str, tmp) -> None:
        self.ddb, self.live, self.table, self.tmp = ddb, live, table, tmp

    def signal(self, sig: int) -> None:
        os.kill(self.ddb._proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the JVM: no shutdown hook runs, whatever it was writing stops there."""
        proc = self.ddb._proc
        self.signal(signal.SIGKILL)
        proc.wait(10)
        self.ddb._proc = None

    def restart(self) -> None:
        """DynamoDB Local again, on the same files and port."""
        self.ddb = DynamoDBLocal(port=self.ddb.port, db_path=self.ddb.db_path, quick_start=True).start()

    def tap(self, name: str) -> StreamTap:
        return StreamTap(self.table, self.ddb.endpoint, self.tmp / f"{name}.json")


@pytest.fixture
def own(monkeypatch: pytest.MonkeyPatch, tmp_path, request) -> Iterator[Own]:
    from chalicelib.tables import create_table

    db_path = tmp_path / "db" if getattr(request, "param", None) == "persistent" else None
    ddb = DynamoDBLocal(db_path=db_path, quick_start=True).start()
    table = f"faults-{uuid.uuid4().hex[:8]}"
    env = {**FAKE_AWS, **{k: ENV[k] for k in ("AUTH_JWT_SECRET", "AUTH_ISSUER")}, "DATA_DIR": str(tmp_path),
           "DYNAMODB_ENDPOINT": ddb.endpoint, "TABLE_NAME": table,
           # Small bounds, so a burst against a stopped database ends in seconds: one attempt of at most 4 s.
           "DB_CONNECT_TIMEOUT": "1", "DB_READ_TIMEOUT": "3", "DB_RETRY_BUDGET": "6", "FUNCTION_TIMEOUT": "10"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _reset_app_caches()
    get_settings()
    create_table()
    own = None
    try:
        with serving(app_module.app) as base:
            own = Own(ddb, Live(base), table, tmp_path)
            try:
                yield own
            finally:
                if own.ddb._proc is not None:
                    own.signal(signal.SIGCONT)
    finally:
        (own.ddb if own else ddb).stop()  # a restarted database is another process
        _reset_app_caches()


class Burst:
    """Six users at once, each creating clients (with an Idempotency-Key) and then changing them: contacts, a
    primary, a category change, an archive. Every answer is recorded with the time it took."""

    def __init__(self, live: Live, categories: list[str], users: int = 6) -> None:
        self.live, self.categories = live, categories
        self.answers: list[tuple[str, int, str, float]] = []  # (what, status, error code, seconds)
        self.unanswered_keys: dict[str, dict] = {}  # Idempotency-Key -> body, of creates that got no 201
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._user, args=(n,)) for n in range(users)]

    def _call(self, what: str, method: str, path: str, body: Any = None, headers: dict | None = None):
        started = time.monotonic()
        answer = self.live.call(method, path, body, headers=headers)
        code = (answer.data or {}).get("error", {}).get("code", "") if answer.status_code >= 400 else ""
        self.answers.append((what, answer.status_code, code, time.monotonic() - started))
        return answer

    def _user(self, n: int) -> None:
        step = 0
        while not self.stop.is_set():
            step += 1
            key = f"u{n}-{step}"
            body = {"name": f"User {n} client {step}", "category_ids": [self.categories[step % 2]],
                    "pricing_tier": "vip" if step % 2 else "standard"}
            created = self._call("create", "POST", "/v1/clients", body, {"Idempotency-Key": key})
            if created.status_code != 201:
                self.unanswered_keys[key] = body
                time.sleep(0.5)  # as a client backs off: a refused connection answers at once
                continue
            cid = created.data["id"]
            contact = self._call("contact", "POST", f"/v1/clients/{cid}/contacts",
                                 {"full_name": f"Pat {step}", "email": f"pat{n}.{step}@acme.test"})
            if contact.status_code == 201 and step % 2:
                self._call("primary", "POST", f"/v1/clients/{cid}/contacts/{contact.data['id']}/make-primary")
            self._call("patch", "PATCH", f"/v1/clients/{cid}", {"category_ids": self.categories, "tags": ["x"]})
            if step % 3 == 0:
                self._call("archive", "POST", f"/v1/clients/{cid}/archive")

    def __enter__(self) -> Burst:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def check_answers(self) -> Counter:
        """Every answer a success or the contract's 503 `unavailable`, none after more than BOUND seconds."""
        bad = [a for a in self.answers if a[1] not in (200, 201) and (a[1], a[2]) != (503, "unavailable")]
        assert bad == [], bad[:10]
        slow = [a for a in self.answers if a[3] > BOUND]
        assert slow == [], slow[:10]
        return Counter(a[1] for a in self.answers)


def _retry_unanswered(live: Live, burst: Burst, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each create that got no 201, sent again with its key once its lease lapsed: it is created now, or it had
    landed (409 idempotency_answer_lost); never twice."""
    monkeypatch.setattr(IdempotencyStore, "clock", staticmethod(lambda: time.time() + 60))
    for key, body in burst.unanswered_keys.items():
        answer = live.call("POST", "/v1/clients", body, headers={"Idempotency-Key": key})
        assert answer.status_code == 201 or (answer.status_code, answer.data["error"]["code"]) == (
            409, "idempotency_answer_lost"), (key, answer.text)
    names = Counter(c["name"] for c in _all_clients(live))
    assert max(names.values()) == 1, [n for n, k in names.items() if k > 1]


def _all_clients(live: Live) -> list[dict]:
    found, cursor = [], ""
    while True:
        page = live.ok("GET", f"/v1/clients?status=lead,trial,active,inactive,archived&limit=100{cursor}")
        found += page["items"]
        if not page["next_cursor"]:
            return found
        cursor = f"&cursor={page['next_cursor']}"


def _setup(own: Own) -> list[str]:
    return [own.live.ok("POST", "/v1/categories", {"name": n}, status=201)["id"] for n in ("Venues", "Caterers")]


def test_a_database_frozen_mid_burst_gives_bounded_503s_and_leaves_nothing_half_written(own, monkeypatch):
    categories = _setup(own)
    with Burst(own.live, categories) as burst:
        time.sleep(1.5)
        own.signal(signal.SIGSTOP)
        FAULTS["sigstop"] += 1
        time.sleep(5)
        own.signal(signal.SIGCONT)
        time.sleep(1.0)
    statuses = burst.check_answers()
    assert statuses[503] >= 1 and statuses[201] >= 1, statuses
    _retry_unanswered(own.live, burst, monkeypatch)
    own.tap("after-freeze").settle()
    assert_consistent()


@pytest.mark.parametrize("own", ["persistent"], indirect=True)
def test_a_database_killed_mid_burst_gives_bounded_503s_and_restarts_with_nothing_half_written(own, monkeypatch):
    categories = _setup(own)
    with Burst(own.live, categories) as burst:
        time.sleep(1.5)
        own.kill()
        FAULTS["sigkill"] += 1
        time.sleep(1.5)  # the burst goes on against the dead database
    own.restart()
    statuses = burst.check_answers()
    assert statuses[503] >= 1 and statuses[201] >= 1, statuses
    _retry_unanswered(own.live, burst, monkeypatch)
    own.tap("after-kill").settle()  # the stream from its start: every effect is a recount, so replays are safe
    assert_consistent()


# --- errors DynamoDB Local never gives, injected through botocore's events ----------------------------------------

class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_) -> Iterator[bytes]:
        yield self.body


def error_answer(code: str, message: str = "injected", **extra: Any) -> AWSResponse:
    """An HTTP 400 answer of DynamoDB with this error code, as its JSON protocol writes it."""
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **extra})
    return AWSResponse("http://dynamodb.local/", 400, {"x-amzn-errortype": code}, _Raw(body.encode()))


def cancelled(*reasons: str) -> AWSResponse:
    return error_answer("TransactionCanceledException", "Transaction cancelled",
                        CancellationReasons=[{"Code": r, "Message": r} for r in reasons])


class answering:
    """While inside, each attempt of `operation` answers the next of `answers` (None: the real database does; the
    last one repeats) before anything is sent: botocore's retries and the app's own see them as DynamoDB's."""

    def __init__(self, operation: str, answers: list) -> None:
        self.operation, self.answers, self.seen = operation, answers, 0

    def __call__(self, **_) -> AWSResponse | None:
        self.seen += 1
        answer = self.answers[min(self.seen, len(self.answers)) - 1]
        if answer is not None:
            FAULTS[self.operation] += 1
            return answer() if callable(answer) else answer
        return None

    def __enter__(self) -> answering:
        configure()  # the connection of the settings in force (a fixture may have changed them)
        self.events = TableItem._get_connection().connection.client.meta.events
        self.events.register_first(f"before-send.dynamodb.{self.operation}", self, unique_id="test-answer")
        return self

    def __exit__(self, *exc: object) -> None:
        self.events.unregister(f"before-send.dynamodb.{self.operation}", unique_id="test-answer")


def _reasons_for_create(conflict_at: int, code: str, items: int = 9) -> AWSResponse:
    return cancelled(*["None" if n != conflict_at else code for n in range(items)])


@pytest.fixture
def short_budget(ddb_api, monkeypatch: pytest.MonkeyPatch):
    """Bounds of seconds: two attempts (botocore) per call, and the app's own retries within 5 s."""
    from chalicelib.config import reset_settings

    for key, value in {"DB_CONNECT_TIMEOUT": "1", "DB_READ_TIMEOUT": "2", "DB_RETRY_BUDGET": "10",
                       "FUNCTION_TIMEOUT": "15"}.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    get_settings()
    return ddb_api


def test_a_throttled_transaction_is_retried_by_botocore_and_the_client_is_created_once(short_budget):
    api = short_budget
    with answering("TransactWriteItems", [lambda: error_answer("ThrottlingException"), None]) as hook:
        answer = api.post("/v1/clients", {"name": "Acme"})
    assert answer.status_code == 201 and hook.seen == 2
    assert len(assert_consistent().clients) == 1


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException",
                                  "RequestLimitExceeded"])
def test_throttling_that_outlasts_the_retries_answers_503_unavailable_in_time(short_budget, code):
    api = short_budget
    client = api.post("/v1/clients", {"name": "Acme"}).data
    for operation, call in [("GetItem", lambda: api.get(f"/v1/clients/{client['id']}")),
                            ("TransactWriteItems", lambda: api.patch(f"/v1/clients/{client['id']}", {"tags": ["a"]})),
                            ("PutItem", lambda: api.post("/v1/clients", {"name": "B"},
                                                         headers={"Idempotency-Key": "throttled"}))]:
        started = time.monotonic()
        with answering(operation, [lambda: error_answer(code)]):
            answer = call()
        assert (answer.status_code, answer.data["error"]["code"]) == (503, "unavailable"), (operation, answer.data)
        assert time.monotonic() - started < BOUND
    assert [c.name for c in assert_consistent().clients.values()] == ["Acme"]


@pytest.mark.parametrize("reason", ["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"])
def test_a_transaction_cancelled_by_a_conflict_or_throttling_is_run_again_and_applied_once(short_budget, reason):
    api = short_budget
    with answering("TransactWriteItems", [lambda: _reasons_for_create(2, reason)] * 2 + [None]) as hook:
        answer = api.post("/v1/clients", {"name": "Acme", "pricing_tier": "vip"})
    assert answer.status_code == 201, answer.data
    assert hook.seen == 3
    found = assert_consistent()
    assert len(found.clients) == 1 and found.snapshot["chips"]["vip"] == 1


@pytest.mark.parametrize("reason", ["ThrottlingError"])
def test_a_transaction_cancelled_every_time_answers_503_unavailable_never_500(short_budget, reason):
    api = short_budget
    started = time.monotonic()
    with answering("TransactWriteItems", [lambda: _reasons_for_create(2, reason)]):
        answer = api.post("/v1/clients", {"name": "Acme"})
    assert (answer.status_code, answer.data["error"]["code"]) == (503, "unavailable"), answer.data
    assert time.monotonic() - started < BOUND
    assert assert_consistent().clients == {}


def test_a_transaction_conflict_on_a_single_write_answers_503_unavailable_never_500(short_budget):
    api = short_budget  # an Idempotency-Key's claim is one PutItem: DynamoDB refuses it while a transaction holds it
    with answering("PutItem", [lambda: error_answer("TransactionConflictException")]):
        answer = api.post("/v1/clients", {"name": "Acme"}, headers={"Idempotency-Key": "conflicted"})
    assert (answer.status_code, answer.data["error"]["code"]) == (503, "unavailable"), answer.data
    assert api.post("/v1/clients", {"name": "Acme"}, headers={"Idempotency-Key": "conflicted"}).status_code == 201
    assert len(assert_consistent().clients) == 1


# --- a poison record -------------------------------------------------------------------------------------------------

def test_a_batch_with_a_poison_record_fails_only_that_record_and_applies_the_rest(ddb_api, stream):
    festival = ddb_api.post("/v1/categories", {"name": "Festival"}).data["id"]
    for n in range(3):
        ddb_api.post("/v1/clients", {"name": f"C{n}", "category_ids": [festival]})
    batch = stream.take()
    poison = json.loads(json.dumps(batch[len(batch) // 2]))
    poison["dynamodb"]["SequenceNumber"] = "999999999999999999999"
    poison["dynamodb"]["NewImage"] = {"pk": {"S": "T#t1#CLIENT#x"}, "sk": {"S": "A#CLIENT"}, "kind": {"S": "client"},
                                      "health_score": {"S": "not a number"}}
    FAULTS["poison"] += 1
    result = app_module.on_table_stream({"Records": batch[:3] + [poison] + batch[3:]}, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "999999999999999999999"}]}
    stream.settle()
    assert ddb_api.get(f"/v1/categories/{festival}").data["clients_count"] == 3
    assert_consistent()


def test_a_stream_effect_refused_by_a_transaction_conflict_fails_only_its_records(ddb_api, stream):
    festival, other = (ddb_api.post("/v1/categories", {"name": n}).data["id"] for n in ("Festival", "Other"))
    ddb_api.post("/v1/clients", {"name": "A", "category_ids": [festival]})
    ddb_api.post("/v1/clients", {"name": "B", "category_ids": [other]})
    batch = stream.take()
    with answering("UpdateItem", [lambda: error_answer("TransactionConflictException")]):
        result = app_module.on_table_stream({"Records": batch}, None)
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed and failed < {r["dynamodb"]["SequenceNumber"] for r in batch}
    assert app_module.on_table_stream({"Records": batch}, None) == {"batchItemFailures": []}
    stream.settle()
    assert_consistent()



@pytest.fixture(scope="module", autouse=True)
def report_figures():
    """The module's figures, printed at its end (seen with -s, or in a soak's log) for SECURITY.md."""
    yield
    print(f"\n{__name__}: {dict(FAULTS)}")
