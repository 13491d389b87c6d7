"""Bearer-token verification (PyJWT, pinned algorithms) and the role ladder of the contract."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from chalicelib.config import ConfigurationError, get_settings
from chalicelib.domain.errors import Forbidden, Unauthorized
from chalicelib.domain.values import is_key_id
from chalicelib.tokens import PORTAL_ISSUER

if TYPE_CHECKING:
    import jwt

STAFF_ROLES = ("viewer", "agent", "manager", "admin")
# The Cognito resource server's scope for other NexusRMS modules (declared in the template, deploy/package.py).
INTEGRATION_SCOPE = "nexus-client-management/integration"


@dataclass(frozen=True)
class Principal:
    sub: str
    tenant_id: str
    roles: tuple[str, ...] = ()
    name: str | None = None
    client_id: str | None = None
    scope: str | None = None
    claims: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_portal(self) -> bool:
        return self.scope == "portal"

    @property
    def kind(self) -> str:
        """portal, integration or staff: who called, for the request's log line."""
        return "portal" if self.is_portal else "integration" if "integration" in self.roles else "staff"

    @property
    def role(self) -> str | None:
        """The highest staff role held (None for portal and integration callers)."""
        return STAFF_ROLES[self.rank()] if self.rank() >= 0 else None

    def rank(self) -> int:
        """Highest staff role held, -1 for none."""
        return max((STAFF_ROLES.index(r) for r in self.roles if r in STAFF_ROLES), default=-1)

    def at_least(self, role: str) -> bool:
        return self.rank() >= STAFF_ROLES.index(role)


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    import jwt

    return jwt.PyJWKClient(url, cache_keys=True)


def verify_token(header: str | None) -> Principal:
    """The principal of an `Authorization: Bearer` header, or 401."""
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:  # the scheme is case-insensitive (RFC 7235)
        raise Unauthorized("a bearer token is required")
    import jwt  # with cryptography, the largest import of a cold start: loaded by the first request with a token

    s = get_settings()
    portal = _portal_claims(token)
    if portal is not None:
        return _principal(portal)
    try:
        if s.auth_jwks_url:
            key, algorithms = _jwks_client(s.auth_jwks_url).get_signing_key_from_jwt(token).key, ["RS256"]
        elif s.auth_jwt_secret:
            key, algorithms = s.auth_jwt_secret, ["HS256"]
        else:
            raise Unauthorized("token verification is not configured")
        # The audience is checked below: Cognito's access tokens name their app client in `client_id`, not `aud`.
        claims = jwt.decode(token, key, algorithms=algorithms, issuer=s.auth_issuer,
                            options={"require": ["exp", "iss", "sub"], "verify_aud": False})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired") from None
    except (jwt.PyJWTError, ValueError) as exc:
        raise Unauthorized(f"the token is invalid: {exc}") from None
    if s.audiences:
        _check_audience(claims, s.audiences)
    return _principal(claims)


def _check_audience(claims: dict, audiences: tuple[str, ...]) -> None:
    """A Cognito ID token names its app client in `aud`, an access token in `client_id`; either must be ours."""
    use = claims.get("token_use")
    if use == "id":
        aud = claims.get("aud")
        named = aud if isinstance(aud, list) else [aud]
    elif use == "access":
        named = [claims.get("client_id")]
    else:
        raise Unauthorized("the token is neither an ID nor an access token")
    if not any(isinstance(a, str) and a in audiences for a in named):
        raise Unauthorized("the token was issued to another app client")


def _portal_claims(token: str) -> dict | None:
    """The claims of a portal token issued by this service, or None when the token is not one (or is forged)."""
    import jwt

    try:
        secret = get_settings().portal_secret
    except ConfigurationError:  # no portal secret: no portal token can be valid (a 401, not a 500)
        return None
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=PORTAL_ISSUER,
                            options={"require": ["exp", "iss", "sub"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the portal session has expired") from None
    except (jwt.PyJWTError, ValueError):
        return None
    if claims.get("scope") != "portal" or not claims.get("client_id"):
        raise Unauthorized("not a portal token")
    return claims


def _principal(claims: dict) -> Principal:
    tenant = claims.get("tenant_id") or claims.get("custom:tenant_id")
    if not isinstance(tenant, str) or not is_key_id(tenant):  # it leads every key: no `#`, within the key size
        raise Unauthorized("the token has no tenant_id")
    roles = claims.get("roles", claims.get("cognito:groups", [])) or []
    if not isinstance(roles, list):
        raise Unauthorized("roles must be a list")
    roles = [str(r) for r in roles]
    scope = claims.get("scope")
    # A Cognito access token of the client-credentials grant (another NexusRMS module) holds the integration scope.
    if isinstance(scope, str) and INTEGRATION_SCOPE in scope.split() and "integration" not in roles:
        roles.append("integration")
    portal = scope == "portal"
    return Principal(sub=str(claims["sub"]), tenant_id=tenant, roles=tuple(roles), name=claims.get("name"),
                     client_id=claims.get("client_id") if portal else None, scope=scope if portal else None,
                     claims=claims)


def authorize(principal: Principal, need: str) -> None:
    """`need` is a staff role, `integration` (integration or admin) or `portal`."""
    if need == "portal":
        if not principal.is_portal or not principal.client_id:
            raise Forbidden("only portal users may call the portal")
        return
    if principal.is_portal:
        raise Forbidden("portal users may only call /v1/portal")
    if need == "integration":
        if "integration" in principal.roles or "admin" in principal.roles:
            return
        raise Forbidden("the integration role is required")
    if not principal.at_least(need):
        raise Forbidden(f"the {need} role is required")
