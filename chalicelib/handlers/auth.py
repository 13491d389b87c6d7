"""Bearer-token verification (PyJWT, pinned algorithms) and the role ladder of the contract."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import jwt

from chalicelib.config import get_settings
from chalicelib.domain.errors import Forbidden, Unauthorized
from chalicelib.tokens import PORTAL_ISSUER

STAFF_ROLES = ("viewer", "agent", "manager", "admin")


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

    def rank(self) -> int:
        """Highest staff role held, -1 for none."""
        return max((STAFF_ROLES.index(r) for r in self.roles if r in STAFF_ROLES), default=-1)

    def at_least(self, role: str) -> bool:
        return self.rank() >= STAFF_ROLES.index(role)


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True)


def verify_token(header: str | None) -> Principal:
    """The principal of an `Authorization: Bearer` header, or 401."""
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:  # the scheme is case-insensitive (RFC 7235)
        raise Unauthorized("a bearer token is required")
    s = get_settings()
    portal = _portal_claims(token, s.portal_secret)
    if portal is not None:
        return _principal(portal)
    try:
        if s.auth_jwks_url:
            key, algorithms = _jwks_client(s.auth_jwks_url).get_signing_key_from_jwt(token).key, ["RS256"]
        elif s.auth_jwt_secret:
            key, algorithms = s.auth_jwt_secret, ["HS256"]
        else:
            raise Unauthorized("token verification is not configured")
        claims = jwt.decode(token, key, algorithms=algorithms, issuer=s.auth_issuer,
                            options={"require": ["exp", "iss", "sub"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired") from None
    except (jwt.PyJWTError, ValueError) as exc:
        raise Unauthorized(f"the token is invalid: {exc}") from None
    return _principal(claims)


def _portal_claims(token: str, secret: str) -> dict | None:
    """The claims of a portal token issued by this service, or None when the token is not one (or is forged)."""
    if not secret:
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
    if not isinstance(tenant, str) or not tenant or "#" in tenant:
        raise Unauthorized("the token has no tenant_id")
    roles = claims.get("roles", claims.get("cognito:groups", [])) or []
    if not isinstance(roles, list):
        raise Unauthorized("roles must be a list")
    return Principal(sub=str(claims["sub"]), tenant_id=tenant, roles=tuple(str(r) for r in roles),
                     name=claims.get("name"), client_id=claims.get("client_id"), scope=claims.get("scope"),
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
