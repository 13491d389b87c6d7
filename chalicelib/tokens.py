"""Mint local HS256 tokens with the claims the contract names (staff, integration, portal)."""
from __future__ import annotations

import time
import uuid

from chalicelib.config import get_settings

PORTAL_ISSUER = "nexusrms-portal"
PORTAL_TTL = 3600  # short-lived: every portal request re-checks access anyway


def mint_portal_token(tenant_id: str, client_id: str, contact_id: str, now: int | None = None) -> tuple[str, int]:
    """A portal JWT signed with PORTAL_TOKEN_SECRET, and its expiry (epoch seconds)."""
    import jwt  # imported when a token is minted, not with the routes that can mint one

    s = get_settings()
    if not s.portal_secret:
        raise RuntimeError("PORTAL_TOKEN_SECRET is not set")
    now = now or int(time.time())
    claims = {"iss": PORTAL_ISSUER, "sub": contact_id, "tenant_id": tenant_id, "client_id": client_id,
              "scope": "portal", "iat": now, "exp": now + PORTAL_TTL, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, s.portal_secret, algorithm="HS256"), now + PORTAL_TTL


def mint_token(tenant_id: str, roles: list[str] | None = None, *, sub: str | None = None, ttl: int = 8 * 3600,
               name: str | None = None, client_id: str | None = None, scope: str | None = None) -> str:
    import jwt

    s = get_settings()
    if not s.auth_jwt_secret:
        raise RuntimeError("AUTH_JWT_SECRET is not set")
    now = int(time.time())
    claims = {"iss": s.auth_issuer, "sub": sub or f"user-{uuid.uuid4().hex[:8]}", "tenant_id": tenant_id,
              "iat": now, "exp": now + ttl}
    if s.audiences:  # shaped like a Cognito ID token of the first app client, so AUTH_AUDIENCE accepts it
        claims.update(aud=s.audiences[0], token_use="id")
    if roles is not None:
        claims["roles"] = roles
    if name:
        claims["name"] = name
    if client_id:
        claims["client_id"] = client_id
    if scope:
        claims["scope"] = scope
    return jwt.encode(claims, s.auth_jwt_secret, algorithm="HS256")
