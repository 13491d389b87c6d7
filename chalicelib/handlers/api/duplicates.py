"""Possible duplicate clients: one client's candidates, the tenant's pairs, and pairs dismissed as not the same."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from chalice import Blueprint
from pydantic import Field, field_validator

from chalicelib.domain import duplicate_cases
from chalicelib.domain.clients import Client
from chalicelib.handlers.fields import Id, ListQuery, Model, Strict
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, query_scope
from chalicelib.handlers.routing import Ctx, api

bp = Blueprint(__name__)

Reason = Literal["same_email", "same_vat_number", "same_name_and_country", "same_email_domain"]
REASONS_DOC = ("`same_email` and `same_vat_number` (normalised) are exact; `same_name_and_country` compares names "
               "without case, accents, punctuation and legal forms (GmbH, Ltd, S.A. …) in the same country; "
               "`same_email_domain` ignores free-mail domains and the tenant's own sending and inbound domains.")


class ClientBrief(Model):
    id: str
    name: str
    client_number: str
    status: str


class DuplicateCandidate(Model):
    client: ClientBrief
    reasons: list[Reason]


class DuplicateCandidates(Model):
    items: list[DuplicateCandidate]


class DuplicatePair(Model):
    kind: Literal["client"]
    clients: list[ClientBrief] = Field(description="the two clients, the lower id first")
    reasons: list[Reason]


class DuplicatePage(Model):
    items: list[DuplicatePair]
    next_cursor: str | None


class DuplicatesQuery(ListQuery):
    kind: Literal["client"] = "client"


class DismissBody(Strict):
    kind: Literal["client"] = "client"
    ids: Annotated[list[Id], Field(min_length=2, max_length=2, json_schema_extra={"uniqueItems": True},
                                   description="two different client ids")]

    @field_validator("ids")
    @classmethod
    def _two_different(cls, ids: list[str]) -> list[str]:
        if len(set(ids)) != len(ids):
            raise ValueError("must name two different clients")
        return ids


class Dismissed(Model):
    kind: Literal["client"]
    ids: list[str]
    dismissed: bool


def _brief(client: Client) -> dict[str, Any]:
    return {"id": client.id, "name": client.name, "client_number": client.client_number, "status": client.status}


@api(bp, "GET", "/v1/clients/{client_id}/duplicates", tag="duplicates", response=DuplicateCandidates,
     summary="Clients that may be this one, with the reasons they match (pairs dismissed left out). " + REASONS_DOC)
def client_duplicates(ctx: Ctx, client_id: str) -> dict[str, Any]:
    found = duplicate_cases.client_duplicates(ctx.stores(), client_id)
    return {"items": [{"client": _brief(other), "reasons": list(c.reasons)} for other, c in found]}


@api(bp, "GET", "/v1/duplicates", tag="duplicates", query=DuplicatesQuery, response=DuplicatePage,
     list_response=True,
     summary="The tenant's possible duplicate pairs, a page of shared keys at a time (a page may hold fewer pairs "
             "than `limit`, or more: a key shared by three clients is three pairs). " + REASONS_DOC)
def list_duplicates(ctx: Ctx) -> dict[str, Any]:
    params = ctx.query()
    scope = query_scope("duplicates", {"kind": params.kind})
    after = decode_cursor(params.cursor, ctx.tenant_id, scope, (str,))
    pairs, next_after = duplicate_cases.list_duplicates(ctx.stores(), params.limit, after[0] if after else None)
    return {"items": [{"kind": params.kind, "clients": [_brief(c) for c in p.clients], "reasons": list(p.reasons)}
                      for p in pairs],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, [next_after]) if next_after else None}


@api(bp, "POST", "/v1/duplicates/dismiss", tag="duplicates", need="agent", body=DismissBody, response=Dismissed,
     summary="Two clients are not the same: the pair is never proposed as duplicates again",
     also={404: "one of the ids names no client of the tenant (nothing is written)"})
def dismiss_duplicates(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body()
    return {"kind": body.kind, "ids": list(duplicate_cases.dismiss(ctx.stores(), body.ids)), "dismissed": True}
