"""Bearer tokens (HS256 locally, RS256 from a JWKS in AWS) and the role ladder of the contract."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.config import reset_settings
from chalicelib.domain.errors import Forbidden, Unauthorized
from chalicelib.handlers import auth
from chalicelib.handlers.auth import Principal, authorize, verify_token
from chalicelib.tokens import mint_token

SECRET = "unit-test-secret-of-enough-length-for-hs256"
ISSUER = "nexusrms-test"
JWKS_URL = "https://cognito-idp.eu-west-1.amazonaws.com/pool/.well-known/jwks.json"


@pytest.fixture(autouse=True)
def local_auth(monkeypatch):
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("AUTH_ISSUER", ISSUER)
    for name in ("AUTH_JWKS_URL", "AUTH_AUDIENCE", "PORTAL_TOKEN_SECRET", "CURSOR_SECRET"):
        monkeypatch.delenv(name, raising=False)
    reset_settings()
    auth._jwks_client.cache_clear()
    yield
    reset_settings()
    auth._jwks_client.cache_clear()


def claims(**over):
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "user-1", "tenant_id": "t1", "roles": ["agent"], "iat": now, "exp": now + 600}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def hs(**over) -> str:
    return "Bearer " + jwt.encode(claims(**over), SECRET, algorithm="HS256")


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


# --- local HS256 tokens ------------------------------------------------------------------------------

def test_a_valid_staff_token_gives_its_principal():
    p = verify_token(hs(name="Ann", roles=["manager"]))
    assert (p.sub, p.tenant_id, p.roles, p.name, p.is_portal) == ("user-1", "t1", ("manager",), "Ann", False)


def test_tokens_minted_by_the_repository_command_are_accepted():
    p = verify_token("Bearer " + mint_token("t9", ["viewer"], sub="u9"))
    assert (p.sub, p.tenant_id, p.roles) == ("u9", "t9", ("viewer",))


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc",
                                    "Bearer not-a-jwt", "Bearer a.b.c"])
def test_missing_or_malformed_header_is_unauthorized(header):
    with pytest.raises(Unauthorized):
        verify_token(header)


def test_the_bearer_scheme_is_case_insensitive():
    token = hs().split(" ", 1)[1]
    assert verify_token(f"bearer {token}").tenant_id == "t1"


def test_an_expired_token_is_unauthorized():
    with pytest.raises(Unauthorized):
        verify_token(hs(exp=int(time.time()) - 60, iat=int(time.time()) - 3600))


def test_a_token_signed_with_another_secret_is_unauthorized():
    token = jwt.encode(claims(), "another-secret-of-enough-length-for-hs256", algorithm="HS256")
    with pytest.raises(Unauthorized):
        verify_token(f"Bearer {token}")


def test_alg_none_is_unauthorized():
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims(roles=['admin']))}."
    with pytest.raises(Unauthorized):
        verify_token(f"Bearer {token}")


def test_an_edited_payload_is_unauthorized():
    header, _, signature = hs().split(" ", 1)[1].split(".")
    forged = f"{header}.{_b64(claims(roles=['admin']))}.{signature}"
    with pytest.raises(Unauthorized):
        verify_token(f"Bearer {forged}")


@pytest.mark.parametrize("over", [{"iss": "someone-else"}, {"iss": None}])
def test_a_wrong_or_missing_issuer_is_unauthorized(over):
    with pytest.raises(Unauthorized):
        verify_token(hs(**over))


def test_a_token_without_exp_is_unauthorized():
    with pytest.raises(Unauthorized):
        verify_token(hs(exp=None))


def test_a_token_without_sub_is_unauthorized():
    with pytest.raises(Unauthorized):
        verify_token(hs(sub=None))


@pytest.mark.parametrize("tenant", [None, "", 42, "t1#CLIENT", ["t1"], "t" * 129])
def test_a_token_without_a_usable_tenant_is_unauthorized(tenant):
    with pytest.raises(Unauthorized):
        verify_token(hs(tenant_id=tenant))


def test_roles_that_are_not_a_list_are_unauthorized():
    with pytest.raises(Unauthorized):
        verify_token(hs(roles="admin"))


def test_a_token_not_yet_valid_is_unauthorized():
    with pytest.raises(Unauthorized):
        verify_token(hs(nbf=int(time.time()) + 3600))


def test_without_a_configured_secret_nothing_is_accepted(monkeypatch):
    token = hs()
    portal_token = hs(roles=None, scope="portal", client_id="c1", sub="contact-1", iss="nexusrms-portal")
    monkeypatch.setenv("AUTH_JWT_SECRET", "")
    reset_settings()
    for header in (token, portal_token):  # a 401 for each, not a ConfigurationError (a 500)
        with pytest.raises(Unauthorized):
            verify_token(header)


# --- RS256 via a JWKS (Cognito) ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def rsa_keys():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048), \
        rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def cognito(monkeypatch, rsa_keys):
    key, _ = rsa_keys
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="kid-1", alg="RS256", use="sig")
    fetched = []

    def fetch_data(self):
        fetched.append(self.uri)
        return {"keys": [jwk]}

    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", fetch_data)
    monkeypatch.setenv("AUTH_JWKS_URL", JWKS_URL)
    reset_settings()
    auth._jwks_client.cache_clear()
    return fetched


def rs(private_key, kid="kid-1", **over) -> str:
    return "Bearer " + jwt.encode(claims(**over), private_key, algorithm="RS256", headers={"kid": kid})


def test_an_rs256_token_signed_by_a_jwks_key_is_accepted(cognito, rsa_keys):
    p = verify_token(rs(rsa_keys[0], roles=["admin"]))
    assert (p.tenant_id, p.roles) == ("t1", ("admin",))
    assert cognito == [JWKS_URL]


def test_cognito_groups_and_custom_tenant_claims_are_understood(cognito, rsa_keys):
    p = verify_token(rs(rsa_keys[0], roles=None, tenant_id=None, **{"cognito:groups": ["viewer"],
                                                                     "custom:tenant_id": "t7"}))
    assert (p.tenant_id, p.roles) == ("t7", ("viewer",))


def test_an_rs256_token_signed_by_another_key_is_unauthorized(cognito, rsa_keys):
    with pytest.raises(Unauthorized):
        verify_token(rs(rsa_keys[1]))


def test_an_rs256_token_with_an_unknown_key_id_is_unauthorized(cognito, rsa_keys):
    with pytest.raises(Unauthorized):
        verify_token(rs(rsa_keys[0], kid="kid-unknown"))


def test_an_expired_rs256_token_is_unauthorized(cognito, rsa_keys):
    with pytest.raises(Unauthorized):
        verify_token(rs(rsa_keys[0], exp=int(time.time()) - 60))


def test_algorithm_confusion_with_the_public_key_as_hmac_secret_is_unauthorized(cognito, rsa_keys):
    pem = rsa_keys[0].public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": "kid-1"})
    body = _b64(claims(roles=["admin"]))
    sig = base64.urlsafe_b64encode(hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(Unauthorized):
        verify_token(f"Bearer {header}.{body}.{sig.rstrip(b'=').decode()}")


def test_a_local_hs256_token_is_refused_once_cognito_is_configured(cognito):
    with pytest.raises(Unauthorized):
        verify_token("Bearer " + jwt.encode(claims(), SECRET, algorithm="HS256", headers={"kid": "kid-1"}))


def test_an_rs256_token_is_refused_when_only_the_local_secret_is_configured(rsa_keys):
    with pytest.raises(Unauthorized):
        verify_token(rs(rsa_keys[0]))


# --- tokens shaped exactly like Cognito's, and AUTH_AUDIENCE --------------------------------------------

POOL_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
SPA_CLIENT = "4kq2c1u9v8spa0client0id000"
MODULE_CLIENT = "7h3m2m0integration0client00"


@pytest.fixture
def pool(cognito, monkeypatch):
    """A user pool whose two app clients (the SPA and the integration modules) are the configured audience."""
    monkeypatch.setenv("AUTH_ISSUER", POOL_ISSUER)
    monkeypatch.setenv("AUTH_AUDIENCE", f"{SPA_CLIENT}, {MODULE_CLIENT}")
    reset_settings()


def id_token_claims(**over):
    """What Cognito puts in an ID token of a staff user (custom attribute tenant_id, groups as roles)."""
    now = int(time.time())
    base = {"sub": "5f1e2d3c-aaaa-bbbb-cccc-0123456789ab", "cognito:groups": ["agent"], "email_verified": True,
            "iss": POOL_ISSUER, "cognito:username": "ann", "origin_jti": "b1d2-origin", "aud": SPA_CLIENT,
            "event_id": "e1f2-event", "token_use": "id", "auth_time": now - 30, "custom:tenant_id": "t7",
            "exp": now + 3600, "iat": now - 30, "jti": "c3d4-jti", "email": "ann@example.com", "name": "Ann"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def access_token_claims(**over):
    """A user's access token: the app client in `client_id`, no `aud`."""
    now = int(time.time())
    base = {"sub": "5f1e2d3c-aaaa-bbbb-cccc-0123456789ab", "cognito:groups": ["agent"], "iss": POOL_ISSUER,
            "client_id": SPA_CLIENT, "origin_jti": "b1d2-origin", "event_id": "e1f2-event", "token_use": "access",
            "scope": "aws.cognito.signin.user.admin", "auth_time": now - 30, "exp": now + 3600, "iat": now - 30,
            "jti": "c3d4-jti", "username": "ann", "custom:tenant_id": "t7"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def module_token_claims(**over):
    """A client-credentials access token of another NexusRMS module; `tenant_id` is added by the pool's
    pre-token-generation trigger (V3)."""
    now = int(time.time())
    base = {"sub": MODULE_CLIENT, "token_use": "access", "scope": "nexus-client-management/integration",
            "auth_time": now, "iss": POOL_ISSUER, "exp": now + 3600, "iat": now, "version": 2, "jti": "f5e6-jti",
            "client_id": MODULE_CLIENT, "tenant_id": "t7"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def signed(private_key, claims_: dict) -> str:
    return "Bearer " + jwt.encode(claims_, private_key, algorithm="RS256", headers={"kid": "kid-1"})


def test_a_cognito_id_token_of_our_app_client_is_accepted(pool, rsa_keys):
    p = verify_token(signed(rsa_keys[0], id_token_claims()))
    assert (p.tenant_id, p.roles, p.name, p.is_portal) == ("t7", ("agent",), "Ann", False)


def test_a_cognito_id_token_of_another_app_client_is_unauthorized(pool, rsa_keys):
    with pytest.raises(Unauthorized):
        verify_token(signed(rsa_keys[0], id_token_claims(aud="some-other-app-client")))


def test_a_cognito_id_token_with_aud_is_accepted_when_no_audience_is_configured(cognito, rsa_keys, monkeypatch):
    monkeypatch.setenv("AUTH_ISSUER", POOL_ISSUER)
    reset_settings()
    assert verify_token(signed(rsa_keys[0], id_token_claims(aud="whatever-client"))).tenant_id == "t7"


def test_a_cognito_access_token_is_checked_by_its_client_id(pool, rsa_keys):
    assert verify_token(signed(rsa_keys[0], access_token_claims())).roles == ("agent",)
    with pytest.raises(Unauthorized):
        verify_token(signed(rsa_keys[0], access_token_claims(client_id="some-other-app-client")))


def test_an_access_token_naming_our_client_only_in_aud_is_unauthorized(pool, rsa_keys):
    with pytest.raises(Unauthorized):
        verify_token(signed(rsa_keys[0], access_token_claims(client_id=None, aud=SPA_CLIENT)))


@pytest.mark.parametrize("use", [None, "refresh", "ID", ["id"]])
def test_with_an_audience_configured_token_use_must_be_id_or_access(pool, rsa_keys, use):
    with pytest.raises(Unauthorized):
        verify_token(signed(rsa_keys[0], id_token_claims(token_use=use)))


def test_a_wrong_audience_setting_refuses_a_token_that_the_right_one_accepts(pool, rsa_keys, monkeypatch):
    token = signed(rsa_keys[0], id_token_claims())
    monkeypatch.setenv("AUTH_AUDIENCE", "not-our-spa-client")
    reset_settings()
    with pytest.raises(Unauthorized):
        verify_token(token)


def test_a_module_token_with_the_integration_scope_may_call_integrations_only(pool, rsa_keys):
    p = verify_token(signed(rsa_keys[0], module_token_claims()))
    assert (p.sub, p.tenant_id, p.roles, p.is_portal, p.client_id) == (MODULE_CLIENT, "t7", ("integration",),
                                                                        False, None)
    authorize(p, "integration")
    for need in [*LADDER, "portal"]:
        with pytest.raises(Forbidden):
            authorize(p, need)


def test_a_module_token_without_a_tenant_claim_is_unauthorized(pool, rsa_keys):
    with pytest.raises(Unauthorized):
        verify_token(signed(rsa_keys[0], module_token_claims(tenant_id=None)))


@pytest.mark.parametrize("scope", ["nexus-client-management/integration2", "other-api/integration",
                                   "aws.cognito.signin.user.admin", "integration"])
def test_only_the_exact_integration_scope_grants_the_integration_role(pool, rsa_keys, scope):
    p = verify_token(signed(rsa_keys[0], module_token_claims(scope=scope)))
    assert p.roles == ()
    with pytest.raises(Forbidden):
        authorize(p, "integration")


def test_a_users_access_token_never_passes_its_app_client_off_as_a_crm_client(pool, rsa_keys):
    p = verify_token(signed(rsa_keys[0], access_token_claims()))
    assert (p.is_portal, p.client_id) == (False, None)


# --- roles -------------------------------------------------------------------------------------------

def staff(*roles) -> Principal:
    return Principal(sub="u", tenant_id="t1", roles=tuple(roles))


LADDER = ["viewer", "agent", "manager", "admin"]


@pytest.mark.parametrize("held", LADDER)
@pytest.mark.parametrize("need", LADDER)
def test_each_role_may_do_all_that_the_roles_before_it_may(held, need):
    if LADDER.index(held) >= LADDER.index(need):
        authorize(staff(held), need)
    else:
        with pytest.raises(Forbidden):
            authorize(staff(held), need)


def test_the_highest_role_held_counts():
    authorize(staff("viewer", "manager"), "manager")


@pytest.mark.parametrize("roles", [(), ("superuser",), ("Admin",)])
def test_a_staff_token_without_a_known_role_is_forbidden_everywhere(roles):
    for need in [*LADDER, "integration", "portal"]:
        with pytest.raises(Forbidden):
            authorize(staff(*roles), need)


def test_the_integration_role_may_call_integrations_only():
    authorize(staff("integration"), "integration")
    for need in LADDER:
        with pytest.raises(Forbidden):
            authorize(staff("integration"), need)


def test_admins_may_call_integrations_but_managers_may_not():
    authorize(staff("admin"), "integration")
    with pytest.raises(Forbidden):
        authorize(staff("manager"), "integration")


def portal(client_id="c1", roles=()) -> Principal:
    return Principal(sub="contact-1", tenant_id="t1", roles=roles, client_id=client_id, scope="portal")


def test_portal_users_may_call_the_portal():
    authorize(portal(), "portal")


@pytest.mark.parametrize("need", [*LADDER, "integration"])
def test_portal_users_are_forbidden_on_staff_routes_whatever_roles_they_claim(need):
    with pytest.raises(Forbidden):
        authorize(portal(roles=("admin", "integration")), need)


def test_a_portal_token_without_a_client_is_forbidden():
    with pytest.raises(Forbidden):
        authorize(portal(client_id=None), "portal")


@pytest.mark.parametrize("roles", [("admin",), ("integration",), ("viewer",)])
def test_staff_and_integration_tokens_are_forbidden_on_the_portal(roles):
    with pytest.raises(Forbidden):
        authorize(staff(*roles), "portal")


def test_a_verified_portal_token_carries_its_client_and_scope():
    p = verify_token(hs(roles=None, scope="portal", client_id="c1", sub="contact-1"))
    assert (p.is_portal, p.client_id, p.sub) == (True, "c1", "contact-1")
    with pytest.raises(Forbidden):
        authorize(p, "viewer")


def test_a_locally_minted_token_passes_a_configured_audience(monkeypatch):
    monkeypatch.setenv("AUTH_AUDIENCE", "spa-client,module-client")
    reset_settings()
    p = verify_token("Bearer " + mint_token("t1", ["agent"], sub="u-9"))
    assert (p.sub, p.tenant_id, p.roles) == ("u-9", "t1", ("agent",))
