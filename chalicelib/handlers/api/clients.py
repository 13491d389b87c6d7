"""Client routes: list, chips, create, read, update, archive and restore."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.domain import client_cases as cases
from chalicelib.domain.values import utcnow
from chalicelib.handlers import schemas as s
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, query_scope
from chalicelib.handlers.routing import Ctx, api
from chalicelib.tables.clients import ClientRepository
from chalicelib.tables.settings import SettingsRepository

bp = Blueprint(__name__)

READ_ONLY = s.CLIENT_READ_ONLY


def _repos(ctx: Ctx) -> tuple[ClientRepository, SettingsRepository]:
    return ClientRepository(ctx.tenant_id, ctx.actor), SettingsRepository(ctx.tenant_id)


def _expected_version(ctx: Ctx) -> int | None:
    return s.if_match_version(ctx.header("if-match"))


@api(bp, "GET", "/v1/clients", summary="List clients", query=s.ClientListQuery,
     response=s.page_of(s.ClientOut), list_response=True)
def list_clients(ctx: Ctx):
    params = ctx.query()
    filters = params.model_dump(exclude={"cursor", "limit"})
    scope = query_scope("clients", filters)
    position = decode_cursor(params.cursor, ctx.tenant_id, scope, (str, str))  # [sort value, client id]
    page, after = cases.list_clients(ctx.stores(), filters, params.limit, after=position)
    return {"items": [c.public() for c in page],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}


@api(bp, "GET", "/v1/clients/chips", summary="Counts of the list's quick filters", response=s.Chips)
def chips(ctx: Ctx):
    clients, settings = _repos(ctx)
    counted = [("live", "1"), ("tier", "vip"), ("highvalue", "1"), ("atrisk", "1"), ("status", "inactive")]
    since = cases.plan_list({"chip": "new"}, settings.get("client"), utcnow()).created_since
    return cases.chip_counts(clients.counts(counted), clients.count_created_since(("new", "1"), since))


@api(bp, "POST", "/v1/clients", summary="Create a client", need="agent", body=s.ClientCreate,
     response=s.ClientOut, status=201, idempotent=True)
def create_client(ctx: Ctx):
    body = ctx.body()
    stores = ctx.stores()
    data = body.model_dump(exclude_none=True)
    client = cases.create_client(stores.clients, stores.settings, data, tenant_id=ctx.tenant_id, actor=ctx.actor,
                                 categories=stores.categories)
    return client.public()


@api(bp, "GET", "/v1/clients/{client_id}", summary="Get a client", response=s.ClientOut)
def get_client(ctx: Ctx, client_id: str):
    return ClientRepository(ctx.tenant_id, ctx.actor).get(client_id).public()


@api(bp, "PATCH", "/v1/clients/{client_id}", summary="Update the named fields of a client", need="agent",
     body=s.ClientUpdate, response=s.ClientOut)
def update_client(ctx: Ctx, client_id: str):
    body = ctx.body()
    stores = ctx.stores()
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    client = cases.update_client(stores.clients, stores.settings, client_id, changes,
                                 expected_version=_expected_version(ctx), categories=stores.categories)
    return client.public()


@api(bp, "POST", "/v1/clients/{client_id}/archive", summary="Archive (soft-delete) a client", need="manager",
     response=s.ClientOut)
def archive_client(ctx: Ctx, client_id: str):
    return cases.archive_client(*_repos(ctx), client_id).public()


@api(bp, "POST", "/v1/clients/{client_id}/restore", summary="Restore an archived client", need="manager",
     response=s.ClientOut)
def restore_client(ctx: Ctx, client_id: str):
    return cases.restore_client(*_repos(ctx), client_id).public()
