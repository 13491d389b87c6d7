"""The isolation matrix: every route of the route table against every credential, role and tenant case."""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

import jwt
import pytest
from pydantic import BaseModel

import app  # noqa: F401 - registers every route in ROUTES
from chalicelib.config import get_settings
from chalicelib.domain import portal as dp
from chalicelib.handlers.auth import STAFF_ROLES
from chalicelib.handlers.routing import ROUTES, RouteDoc
from tests.security.matrix_world import (
    INTERNAL_MARKERS,
    OTHER_RSA_KEY,
    OTHER_SECRET,
    SPA_CLIENT,
    World,
    hs256_with_raw_key,
    portal_claims,
    portal_token,
    public_pem,
    rs256,
    staff_claims,
    staff_token,
    table_items,
    unsigned_jwt,
)

NEEDS = {*STAFF_ROLES, "integration", "portal", "public"}
CHILD_PARAMS = ("comm_id", "thread_id", "contact_id", "task_id", "related_id")


def name(doc: RouteDoc) -> str:
    return f"{doc.method} {doc.path}"


def params_of(doc: RouteDoc) -> list[str]:
    return re.findall(r"{(\w+)}", doc.path)


def fill(doc: RouteDoc, params: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: params[m.group(1)], doc.path)


# --- what each route is sent: a body it would take, so a 404 is the answer to the ids and not to the body

CSV = b"name,email\nImported Row,row@x.test\n"
BODIES: dict[str, Callable[[dict], object]] = {
    "POST /v1/clients/bulk": lambda p: {"action": "add_tag", "client_ids": [p["client_id"]], "params": {"tag": "x"}},
    "POST /v1/categories": lambda p: {"name": "New category"},
    "PATCH /v1/categories/{category_id}": lambda p: {"name": "Renamed"},
    "POST /v1/clients": lambda p: {"name": "Zed Ltd"},
    "PATCH /v1/clients/{client_id}": lambda p: {"phone": "123"},
    "POST /v1/clients/{client_id}/communications": lambda p: {"type": "phone", "direction": "inbound",
                                                              "subject": "Hello"},
    "PATCH /v1/clients/{client_id}/communications/{comm_id}": lambda p: {"subject": "Changed"},
    "POST /v1/clients/{client_id}/threads": lambda p: {"subject": "New thread"},
    "PATCH /v1/clients/{client_id}/threads/{thread_id}": lambda p: {"subject": "Renamed"},
    "POST /v1/inbox/unmatched/{item_id}/assign": lambda p: {"client_id": p["client_id"]},
    "POST /v1/clients/{client_id}/contacts": lambda p: {"full_name": "New One", "email": "new@x.test"},
    "PATCH /v1/clients/{client_id}/contacts/{contact_id}": lambda p: {"phone": "123"},
    "PUT /v1/clients/{client_id}/contacts/{contact_id}/portal-access": lambda p: {"enabled": True},
    "PUT /v1/integrations/projects/{project_id}": lambda p: {"client_id": p["client_id"], "status": "active"},
    "PUT /v1/integrations/invoices/{invoice_id}": lambda p: {"client_id": p["client_id"], "kind": "invoice",
                                                             "amount": "5.00", "status": "open"},
    "POST /v1/portal/invitations/accept": lambda p: {"token": "dDEKY2xpZW50CmNvbnRhY3Q.forged"},
    "PATCH /v1/portal/me": lambda p: {"phone": "555"},
    "POST /v1/clients/{client_id}/feedback": lambda p: {"rating": 3},
    "POST /v1/segments": lambda p: {"name": "New segment", "type": "static"},
    "PATCH /v1/segments/{segment_id}": lambda p: {"name": "Renamed"},
    "POST /v1/segments/{segment_id}/duplicate": lambda p: {"name": "Copy"},
    "POST /v1/segments/{segment_id}/members": lambda p: {"client_id": p["related_id"]},
    "POST /v1/settings/custom-fields": lambda p: {"key": "newkey", "label": "New", "type": "text"},
    "PUT /v1/settings/client": lambda p: {},
    "PATCH /v1/settings/client": lambda p: {"default_payment_terms_days": 14},
    "PUT /v1/settings/portal": lambda p: {"enabled": True},
    "PATCH /v1/settings/portal": lambda p: {"enabled": True},
    "PUT /v1/settings/lead-score-thresholds": lambda p: {},
    "PATCH /v1/settings/lead-score-thresholds": lambda p: {"hot": 80},
    "POST /v1/webhooks/node": lambda p: {"type": "client.linked", "tenant_id": "t1",
                                         "occurred_at": "2026-01-01T00:00:00Z",
                                         "data": {"node_client_id": "n-1", "client_id": p["client_id"]}},
    "POST /v1/clients/{client_id}/tasks": lambda p: {"title": "New task"},
    "PATCH /v1/clients/{client_id}/tasks/{task_id}": lambda p: {"title": "Renamed"},
    "POST /v1/clients/{client_id}/associations": lambda p: {"related_id": p["related_id"]},
    "POST /v1/clients/import": lambda p: CSV,
    "POST /v1/duplicates/dismiss": lambda p: {"kind": "client", "ids": [p["client_id"], p["related_id"]]},
}

# Public routes answer the same whatever bearer token comes along: the request, and the anonymous answer.
PUBLIC: dict[str, tuple[str, int, str | None]] = {
    "GET /v1/health": ("", 200, None),
    "GET /v1/openapi.json": ("", 200, None),
    "GET /v1/docs": ("", 200, None),
    "GET /v1/exports/{export_id}": ("?token=Zm9yZ2Vk.Zm9yZ2Vk", 404, "not_found"),  # a link's own token, forged
    "POST /v1/portal/invitations/accept": ("", 401, "unauthorized"),  # a forged invitation token
    "POST /v1/webhooks/node": ("", 401, "unauthorized"),  # no Standard Webhooks signature
}


def request_of(doc: RouteDoc, params: dict[str, str]) -> tuple[str, object, dict]:
    key = name(doc)
    path = fill(doc, params) + (PUBLIC[key][0] if key in PUBLIC else "")
    body = BODIES[key](params) if key in BODIES else None
    headers = {"Content-Type": "text/csv"} if isinstance(body, bytes) else {}
    if doc.method == "GET" and doc.content_type != "application/json":
        headers["Accept"] = f"{doc.content_type}, application/json"
    return path, body, headers


# --- the cases -------------------------------------------------------------------------------------------------


def shape(doc: RouteDoc) -> str:
    return {"portal": "portal", "integration": "integration"}.get(doc.need, "staff")


def good_claims(world: World, kind: str, tenant: str = "t1", **over) -> dict:
    t = world.t1 if tenant == "t1" else world.t2
    if kind == "portal":
        return portal_claims(t.id, t.params["client_id"], t.acme_contact, **over)
    return staff_claims(t.id, ["integration"] if kind == "integration" else ["admin"], **over)


def sign(kind: str, claims: dict) -> str:
    secret = get_settings().portal_secret if kind == "portal" else get_settings().auth_jwt_secret
    return jwt.encode(claims, secret, algorithm="HS256")


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]


def _tampered_signature(world, kind):
    head, body, signature = sign(kind, good_claims(world, kind)).split(".")
    return f"{head}.{body}.{_flip(signature, len(signature) // 2)}"


def _tampered_payload(world, kind):
    """t2's own valid token with its payload swapped for one naming t1 (and t1's portal client)."""
    head, _, signature = sign(kind, good_claims(world, kind, "t2")).split(".")
    _, body, _ = unsigned_jwt({}, good_claims(world, kind)).split(".")
    return f"{head}.{body}.{signature}"


def _alg_none_keeping_signature(world, kind):
    _, body, signature = sign(kind, good_claims(world, kind)).split(".")
    head, _, _ = unsigned_jwt({"alg": "none", "typ": "JWT"}, {}).split(".")
    return f"{head}.{body}.{signature}"


def _cross_secret(world, kind):
    """Each token kind signed with the other kind's secret: a staff token with the portal key and the reverse."""
    s = get_settings()
    return jwt.encode(good_claims(world, kind), s.auth_jwt_secret if kind == "portal" else s.portal_secret,
                      algorithm="HS256")


def _cognito(world, kind, **over) -> dict:
    """Claims shaped like a Cognito ID token of the SPA (or a module's access token) of the JWKS issuer."""
    base = good_claims(world, "integration" if kind == "integration" else "staff", iss=world.jwks_issuer)
    use = {"token_use": "access", "client_id": SPA_CLIENT} if kind == "integration" else \
        {"token_use": "id", "aud": SPA_CLIENT}
    return {**base, **use, **over}


@dataclass(frozen=True)
class Credential:
    """A bad credential: the Authorization header for a route of `kind` (staff, integration, portal), and the
    trust set up while it is sent (`hs256` is the local run; `jwks` is Cognito; `audience` sets AUTH_AUDIENCE)."""

    header: Callable[[World, str], str | None]
    trust: str = "hs256"


def bearer(make: Callable[[World, str], str]) -> Callable[[World, str], str]:
    return lambda world, kind: f"Bearer {make(world, kind)}"


NOW = int(time.time())
CREDENTIALS: dict[str, Credential] = {
    "no_token": Credential(lambda w, k: None),
    "basic_scheme": Credential(lambda w, k: "Basic dXNlcjpwYXNzd29yZA=="),
    "empty_bearer": Credential(lambda w, k: "Bearer "),
    "garbage": Credential(lambda w, k: "Bearer not-a-jwt"),
    "expired": Credential(bearer(lambda w, k: sign(k, good_claims(w, k, iat=NOW - 7200, exp=NOW - 60)))),
    "not_yet_valid": Credential(bearer(lambda w, k: sign(k, good_claims(w, k, nbf=NOW + 3600)))),
    "no_exp": Credential(bearer(lambda w, k: sign(k, {**good_claims(w, k), "exp": None}))),
    "no_sub": Credential(bearer(lambda w, k: sign(k, {**good_claims(w, k), "sub": None}))),
    "no_tenant": Credential(bearer(lambda w, k: sign(k, {**good_claims(w, k), "tenant_id": None}))),
    "tenant_not_a_string": Credential(bearer(lambda w, k: sign(k, good_claims(w, k, tenant_id=1)))),
    "tenant_that_cannot_lead_a_key": Credential(bearer(lambda w, k: sign(k, good_claims(w, k, tenant_id="t1#x")))),
    "roles_not_a_list": Credential(bearer(lambda w, k: sign("staff", {**good_claims(w, "staff"), "roles": "admin"}))),
    "alg_none": Credential(bearer(lambda w, k: unsigned_jwt({"alg": "none", "typ": "JWT"}, good_claims(w, k)))),
    "alg_none_with_signature": Credential(bearer(_alg_none_keeping_signature)),
    "wrong_issuer": Credential(bearer(lambda w, k: sign(k, good_claims(w, k, iss="https://evil.example")))),
    "wrong_key": Credential(bearer(lambda w, k: jwt.encode(good_claims(w, k), OTHER_SECRET, algorithm="HS256"))),
    "other_kinds_secret": Credential(bearer(_cross_secret)),
    "tampered_signature": Credential(bearer(_tampered_signature)),
    "tampered_payload": Credential(bearer(_tampered_payload)),
    "rs256_where_hs256_is_trusted": Credential(bearer(lambda w, k: rs256(good_claims(w, k)))),
    # Cognito (RS256 from the JWKS, AUTH_AUDIENCE set):
    "hs256_signed_with_the_rs_public_key": Credential(
        bearer(lambda w, k: hs256_with_raw_key(_cognito(w, k), public_pem(), kid="k1")), "jwks"),
    "hs256_signed_with_the_rs_public_key_no_kid": Credential(
        bearer(lambda w, k: hs256_with_raw_key(_cognito(w, k), public_pem())), "jwks"),
    "hs256_local_secret_where_jwks_is_trusted": Credential(
        bearer(lambda w, k: jwt.encode(_cognito(w, k), get_settings().auth_jwt_secret, algorithm="HS256")), "jwks"),
    "rs256_by_another_key": Credential(bearer(lambda w, k: rs256(_cognito(w, k), OTHER_RSA_KEY)), "jwks"),
    "rs256_unknown_kid": Credential(bearer(lambda w, k: rs256(_cognito(w, k), OTHER_RSA_KEY, kid="k9")), "jwks"),
    "rs256_expired": Credential(bearer(lambda w, k: rs256(_cognito(w, k, exp=NOW - 60))), "jwks"),
    "rs256_wrong_issuer": Credential(bearer(lambda w, k: rs256(_cognito(w, k, iss="https://evil.example"))), "jwks"),
    "rs256_wrong_audience": Credential(
        bearer(lambda w, k: rs256(_cognito(w, k, aud="someone-else", client_id="someone-else"))), "jwks"),
    "wrong_audience": Credential(
        bearer(lambda w, k: staff_token("t1", ["integration"] if k == "integration" else ["admin"],
                                        aud="someone-else", token_use="id")), "audience"),
    "no_token_use": Credential(
        bearer(lambda w, k: staff_token("t1", ["integration"] if k == "integration" else ["admin"],
                                        aud=SPA_CLIENT)), "audience"),
}


# Valid tokens of a principal the route must refuse (403), or of another tenant or portal client (404).
def _staff(roles):
    return lambda w: staff_token("t1", roles)


PRINCIPALS: dict[str, Callable[[World], str]] = {
    "viewer": _staff(["viewer"]),
    "agent": _staff(["agent"]),
    "manager": _staff(["manager"]),
    "admin": _staff(["admin"]),
    "no_roles": _staff([]),
    "unknown_roles": _staff(["superuser", "Admin", "owner"]),  # roles are exact names: "Admin" is not admin
    "integration": _staff(["integration"]),
    "portal": lambda w: portal_token("t1", w.t1.params["client_id"], w.t1.acme_contact),
    "revoked_portal": lambda w: portal_token("t1", w.t1.params["client_id"], w.t1.revoked_contact),
}
TENANT_CASES = ("other_tenant", "other_client")
CASES = [*CREDENTIALS, *PRINCIPALS, *TENANT_CASES]


@dataclass(frozen=True)
class Expect:
    status: int | None  # None: any answer below 500 that holds none of the other side's data
    code: str | None = None
    why: str = ""


def expectation(doc: RouteDoc, case: str) -> Expect | str:
    """The contract's answer of `doc` to `case`, or a string saying why the case does not apply to the route."""
    if doc.need == "public":
        _, status, code = PUBLIC[name(doc)]
        return Expect(status, code, "a public route answers as to an anonymous caller")
    if case in CREDENTIALS:
        return Expect(401, "unauthorized", "a bad credential")
    portal = doc.need == "portal"
    if case in STAFF_ROLES:
        if portal:
            return Expect(403, "forbidden", "a staff token on a portal route")
        if doc.need == "integration":
            return Expect(403, "forbidden", "integration routes take integration or admin") if case != "admin" \
                else "admin may call integration routes"
        if STAFF_ROLES.index(case) < STAFF_ROLES.index(doc.need):
            return Expect(403, "forbidden", f"{case} is below {doc.need}")
        return f"{case} may call a {doc.need} route"
    if case in ("no_roles", "unknown_roles"):
        return Expect(403, "forbidden", "a staff token without a known role")
    if case == "integration":
        if doc.need == "integration":
            return "the integration role may call integration routes"
        return Expect(403, "forbidden", "integration tokens may only call /v1/integrations")
    if case == "portal":
        return "a portal token may call the portal" if portal else Expect(403, "forbidden", "a portal token on staff")
    if case == "revoked_portal":
        return Expect(401, "unauthorized", "portal access was turned off") if portal \
            else Expect(403, "forbidden", "a portal token on a staff route")
    if case == "other_tenant":
        if doc.method == "PUT" and doc.need == "integration":
            return Expect(422, "validation_error", "an upsert's id is the caller's own: the other tenant's client "
                                                   "in the body is refused as not one of its clients")
        return Expect(404, "not_found", "another tenant's ids") if params_of(doc) \
            else Expect(None, why="another tenant's token sees none of this tenant's data")
    if case == "other_client":
        if portal:
            return Expect(404, "not_found", "another portal client's ids") if params_of(doc) \
                else Expect(None, why="another portal client sees none of this client's data")
        if "client_id" in params_of(doc) and set(params_of(doc)) & set(CHILD_PARAMS):
            return Expect(404, "not_found", "a child of another client named under this client")
        return "no other client's child in the path"
    raise AssertionError(f"unknown case {case}")


MATRIX = [(doc, case) for doc in ROUTES for case in CASES if isinstance(expectation(doc, case), Expect)]
NOT_APPLICABLE = [(doc, case) for doc in ROUTES for case in CASES if not isinstance(expectation(doc, case), Expect)]


def _id(value) -> str:
    return name(value) if isinstance(value, RouteDoc) else str(value)


# --- the meta-tests: a new route, need or case cannot be left out ----------------------------------------------


def test_every_route_meets_every_case_or_says_why_not():
    assert len(ROUTES) > 90  # `import app` registered the route table
    assert len(MATRIX) + len(NOT_APPLICABLE) == len(ROUTES) * len(CASES)
    assert {name(doc) for doc, _ in MATRIX} == {name(doc) for doc in ROUTES}
    for doc in ROUTES:  # every route meets every credential case and at least one refused principal
        cases = {case for d, case in MATRIX if d is doc}
        assert set(CREDENTIALS) <= cases, name(doc)
        assert cases & {"viewer", "no_roles", "integration", "portal", "admin"}, name(doc)
    not_applicable = {case for _, case in NOT_APPLICABLE}
    assert not_applicable <= {*STAFF_ROLES, "integration", "portal", "other_client"}


def test_every_route_has_a_known_need_and_public_routes_a_written_expectation():
    assert {doc.need for doc in ROUTES} <= NEEDS
    assert {name(doc) for doc in ROUTES if doc.need == "public"} == set(PUBLIC)


def test_every_route_taking_a_body_is_sent_one_it_accepts():
    assert {name(doc) for doc in ROUTES if doc.body is not None or doc.accepts} == set(BODIES)
    for doc in ROUTES:
        if doc.body is not None and name(doc) in BODIES:
            ids = {key: f"x{n}" for n, key in enumerate(CHILD_PARAMS + ("client_id",))}  # distinct, as real ids are
            doc.body.model_validate(BODIES[name(doc)](ids), strict=False)


def test_the_baseline_tokens_of_each_trust_are_accepted(world, trust):
    """The bad credentials differ from these by one defect: without it the same token is taken."""
    acme, project = world.t1.params["client_id"], world.t1.params["project_id"]
    for kind, path in (("staff", f"/v1/clients/{acme}"), ("integration", f"/v1/integrations/projects/{project}"),
                       ("portal", "/v1/portal/me")):
        assert world.call("GET", path, f"Bearer {sign(kind, good_claims(world, kind))}").status_code == 200, kind
    trust("jwks")
    for kind, path in (("staff", f"/v1/clients/{acme}"), ("integration", f"/v1/integrations/projects/{project}")):
        assert world.call("GET", path, f"Bearer {rs256(_cognito(world, kind))}").status_code == 200, kind
    trust("audience")
    token = staff_token("t1", ["admin"], aud=SPA_CLIENT, token_use="id")
    assert world.call("GET", f"/v1/clients/{acme}", f"Bearer {token}").status_code == 200


# --- the matrix ------------------------------------------------------------------------------------------------


def _snapshot(prefix: str) -> list[tuple]:
    return [i for i in table_items() if i[0].startswith(prefix)]


def _wrong(world: World, doc: RouteDoc, case: str, authorization: str | None, params: dict[str, str],
           watched: str | None = None) -> str | None:
    """What is wrong with the answer of `doc` to `case` (None: it is the contract's). A refusal must change
    nothing at all; an answer to another tenant or portal client must leave the `watched` keys as they were."""
    expect = expectation(doc, case)
    assert isinstance(expect, Expect)
    path, body, headers = request_of(doc, params)
    refusal = expect.status is not None
    before = world.effects() if refusal else _snapshot(watched) if doc.method != "GET" else None
    response = world.call(doc.method, path, authorization, body, headers)
    if expect.status is None:
        if response.status_code >= 500:
            return f"{response.status_code} {response.data}"
        text = response.body.decode() if isinstance(response.body, bytes) else str(response.body)
        sent = path + (body.decode() if isinstance(body, bytes) else str(body))
        theirs = world.t1.ids if case == "other_tenant" else world.t1.acme_ids
        leaked = {i for i in theirs if i in text and i not in sent}
        if leaked:
            return f"{expect.why}: the answer names {sorted(leaked)}"
    elif response.status_code != expect.status or (
            expect.code and (response.data or {}).get("error", {}).get("code") != expect.code):
        return f"{expect.why}: wanted {expect.status} {expect.code}, got {response.status_code} {response.data}"
    if refusal and world.effects() != before:
        return f"{expect.why}: the refused request wrote {world.writes[before[0]:]} ({response.status_code})"
    if not refusal and before is not None and _snapshot(watched) != before:
        return f"{expect.why}: the request changed the other side's items ({response.status_code})"
    return None


@pytest.fixture
def unchanged(world):
    """The whole table as it was before the test, compared after it: the net behind the write counter."""
    before = table_items()
    yield
    assert table_items() == before, "a refused request changed the table"


def _by_route(family) -> list[RouteDoc]:
    return [doc for doc in ROUTES if any(d is doc and c in family for d, c in MATRIX)]


def _cases(doc: RouteDoc, family) -> list[str]:
    return [c for d, c in MATRIX if d is doc and c in family]


@pytest.mark.parametrize("doc", _by_route(CREDENTIALS), ids=_id)
def test_a_bad_credential_is_401_on_every_route(world, trust, unchanged, doc):
    wrong = {}
    for mode in ("hs256", "jwks", "audience"):
        trust(mode)
        for case in _cases(doc, CREDENTIALS):
            if CREDENTIALS[case].trust == mode:
                wrong[case] = _wrong(world, doc, case, CREDENTIALS[case].header(world, shape(doc)), world.t1.params)
    assert {case: why for case, why in wrong.items() if why} == {}
    assert len(wrong) == len(_cases(doc, CREDENTIALS))


@pytest.mark.parametrize("doc", _by_route(PRINCIPALS), ids=_id)
def test_a_principal_the_route_does_not_serve_is_refused(world, unchanged, doc):
    wrong = {case: _wrong(world, doc, case, f"Bearer {PRINCIPALS[case](world)}", world.t1.params)
             for case in _cases(doc, PRINCIPALS)}
    assert {case: why for case, why in wrong.items() if why} == {}


@pytest.mark.parametrize("doc", _by_route({"other_tenant"}), ids=_id)
def test_another_tenants_token_finds_nothing_of_this_tenant(world, doc):
    t2 = world.t2
    token = {"staff": staff_token("t2", ["admin"]), "integration": staff_token("t2", ["integration"]),
             "portal": portal_token("t2", t2.params["client_id"], t2.acme_contact)}[shape(doc)]
    assert _wrong(world, doc, "other_tenant", f"Bearer {token}", world.t1.params, watched="T#t1#") is None


@pytest.mark.parametrize("doc", _by_route({"other_client"}), ids=_id)
def test_another_clients_ids_are_404(world, doc):
    t1 = world.t1
    if doc.need == "portal":  # Bolt's contact asks for Acme's threads and quotes
        token = portal_token("t1", t1.other["client_id"], t1.bolt_contact)
        params = t1.params
    elif doc.need == "public":
        token, params = staff_token("t1", ["admin"]), t1.params
    else:  # Bolt's path naming one of Acme's children
        token, params = staff_token("t1", ["admin"]), {**t1.params, "client_id": t1.other["client_id"]}
    watched = f"T#t1#CLIENT#{t1.params['client_id']}"  # Acme's own items
    assert _wrong(world, doc, "other_client", f"Bearer {token}", params, watched=watched) is None


def test_the_write_counter_and_the_table_snapshot_see_a_write(world):
    """The nets of the matrix catch a write: one by t2 is counted and changes t2's items, not t1's."""
    count, t1_items = len(world.writes), _snapshot("T#t1#")
    changed = world.call("PATCH", f"/v1/clients/{world.t2.params['client_id']}",
                         f"Bearer {staff_token('t2', ['agent'])}", {"phone": "555 0100"})
    assert changed.status_code == 200 and len(world.writes) > count
    assert _snapshot("T#t1#") == t1_items


# --- portal answers: only what the portal models name ---------------------------------------------------------

# Fields of the staff records a portal user must never be shown (decided from chalicelib/domain/*.py: keys,
# revisions, staff notes and flags, scores, pricing, finance figures, sync and invitation internals).
INTERNAL_FIELDS = {
    "tenant_id", "pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "rev", "version", "created_by", "updated_by",
    "created_by_name", "notes", "followup_notes", "requires_followup", "followup_date", "outcome", "tags",
    "category_ids", "custom_fields", "pipeline_stage", "health_score", "risk_level", "churn_probability",
    "lead_classification", "lead_score", "lifetime_revenue", "outstanding_balance", "pricing_tier",
    "price_multiplier", "credit_limit", "discount_percent", "tax_exempt", "tax_rate_override", "payment_terms_days",
    "portal_access", "portal_invited_at", "invitation_hash", "invitation_expires_at", "node_user_id",
    "node_client_id", "node_url", "node_updated_at", "last_synced_at", "contact_number", "is_technical_contact",
    "position", "department", "cc", "bcc", "attachments", "integration_id", "message_id", "client_contact_id",
    "response_time_minutes", "deleted_at", "status_before_archive", "billing_contact_id", "import_id",
    "projects_count", "avg_response_time_minutes", "last_contacted_at", "project_id", "action_items", "attendees",
}
PORTAL_ROUTES = [doc for doc in ROUTES if doc.need == "portal" or name(doc) == "POST /v1/portal/invitations/accept"]


def _models(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def _reachable(model: type[BaseModel]) -> set[type[BaseModel]]:
    seen, todo = set(), [model]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(sub for f in m.model_fields.values() for sub in _models(f.annotation))
    return seen


def _stray(value, annotation, where: str = "") -> list[str]:
    """The keys of an answer its model does not name, with where they are."""
    models = _models(annotation)
    if isinstance(value, list):
        args = get_args(annotation) or (annotation,)
        return [s for n, item in enumerate(value) for s in _stray(item, args[0], f"{where}[{n}]")]
    if not isinstance(value, dict) or not models:
        return []
    model = models[0]
    out = [f"{where}.{key}" for key in value if key not in model.model_fields]
    return out + [s for key, item in value.items() if key in model.model_fields
                  for s in _stray(item, model.model_fields[key].annotation, f"{where}.{key}")]


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    return {k for v in value for k in _keys(v)} if isinstance(value, list) else set()


def test_portal_answer_models_are_the_portal_records_and_name_no_internal_field():
    domain = {m.__name__: m for m in (dp.PortalContact, dp.PortalClient, dp.PortalCommunication, dp.PortalThread,
                                      dp.PortalDocument)}
    for doc in PORTAL_ROUTES:
        for model in _reachable(doc.response):
            names = set(model.model_fields)
            assert not names & INTERNAL_FIELDS, (name(doc), model.__name__, names & INTERNAL_FIELDS)
            if model.__name__ in domain:  # the answer model is the portal record's public fields, no more
                assert names == {n for n, f in domain[model.__name__].model_fields.items() if not f.exclude}
            else:
                assert model.__name__ in {"MeOut", "ThreadDetailOut", "AcceptOut", "Address"} \
                    or model.__name__.startswith("Portal") and model.__name__.endswith("Page"), model.__name__


def test_every_portal_answer_holds_only_its_models_fields_and_no_staff_text(world):
    t2 = world.t2  # t2's portal contact may approve its own quote without changing t1's world
    token = f"Bearer {portal_token('t2', t2.params['client_id'], t2.acme_contact)}"
    params = {"thread_id": t2.params["thread_id"], "quote_id": t2.params["quote_id"]}
    answers = {}
    for doc in PORTAL_ROUTES:
        path, body, headers = request_of(doc, params)
        response = world.call(doc.method, path, None if doc.need == "public" else token, body, headers)
        answers[name(doc)] = response
        if doc.need == "public":
            continue
        assert response.status_code == doc.status, (name(doc), response.status_code, response.data)
        assert _stray(response.data, doc.response) == [], name(doc)
        assert not _keys(response.data) & INTERNAL_FIELDS, (name(doc), _keys(response.data) & INTERNAL_FIELDS)
        assert not [m for m in INTERNAL_MARKERS if m in response.body.decode()], (name(doc), response.data)
    assert answers["GET /v1/portal/communications"].data["items"], "the contact's messages are listed"
    assert answers["GET /v1/portal/quotes"].data["items"], "its quotes are listed"
    assert answers["GET /v1/portal/threads/{thread_id}"].data["messages"], "a thread's messages are shown"


# --- another tenant's ids inside a body: never linked, never 403 ----------------------------------------------

REFERENCES = {  # body fields naming a record of the tenant, and which of t2's records to name instead
    "parent_id": "category_id", "category_ids": "category_id", "thread_id": "thread_id",
    "client_contact_id": "contact_id", "contact_ids": "contact_id", "project_id": "project_id",
    "client_id": "client_id", "related_id": "client_id"}
BULK = "POST /v1/clients/bulk"
# A communication's project_id names the projects module's project (it may log a call about a project before that
# module has pushed it), so it is kept as written, like an integration_id; feedback, which moves the health score
# from the project, checks it.
FREE_REFERENCES = {("POST /v1/clients/{client_id}/communications", "project_id"),
                   ("PATCH /v1/clients/{client_id}/communications/{comm_id}", "project_id")}
BODY_REFERENCES = [(doc, f) for doc in ROUTES if doc.body is not None and doc.need != "public"
                   for f in doc.body.model_fields if f in REFERENCES and (name(doc), f) not in FREE_REFERENCES] + \
    [(doc, f) for doc in ROUTES if name(doc) == BULK for f in ("client_ids", "params.category_id")]


def _reference_case(doc, field_name):
    return pytest.param(doc, field_name, id=f"{name(doc)} {field_name}")


def test_every_id_field_of_a_body_is_tried_with_another_tenants_id():
    fields = {f for doc in ROUTES if doc.body and doc.need != "public" for f in doc.body.model_fields
              if f.endswith(("_id", "_ids"))}
    assert fields - set(REFERENCES) == {"integration_id", "assignee_id"}  # free text, not records of the tenant
    assert len(BODY_REFERENCES) >= 16


@pytest.mark.parametrize("doc,field_name", [_reference_case(d, f) for d, f in BODY_REFERENCES])
def test_another_tenants_id_in_a_body_is_refused_and_links_nothing(world, doc, field_name):
    t1, t2 = world.t1.params, world.t2.params
    body = BODIES[name(doc)](t1)
    if field_name == "client_ids":
        body = {**body, "client_ids": [t2["client_id"]]}
    elif field_name == "params.category_id":
        body = {"action": "add_category", "client_ids": [t1["client_id"]], "params": {"category_id": t2["category_id"]}}
    else:
        theirs = t2[REFERENCES[field_name]]
        body = {**body, field_name: [theirs] if field_name.endswith("_ids") else theirs}
    token = staff_token("t1", ["integration"] if doc.need == "integration" else ["admin"])
    path, _, headers = request_of(doc, t1)
    before = world.effects()
    response = world.call(doc.method, path, f"Bearer {token}", body, headers)
    if name(doc) == BULK and response.status_code == 200:  # a bulk action answers per client
        assert [r["error"]["code"] for r in response.data["results"] if r.get("error")] == ["not_found"], response.data
        return
    assert response.status_code in (404, 422), (response.status_code, response.data)
    assert world.effects() == before, world.writes[before[0]:]
