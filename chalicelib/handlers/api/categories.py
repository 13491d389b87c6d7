"""Category routes: the tree, its scopes and descendants, and the clients-count recount."""
from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.domain import category_cases as cases
from chalicelib.domain.categories import SCOPES, order_key
from chalicelib.domain.errors import Forbidden
from chalicelib.handlers import schemas as s
from chalicelib.handlers.pagination import page_of_list, query_scope
from chalicelib.handlers.routing import Ctx, api

bp = Blueprint(__name__)
BASE = "/v1/categories"
ONE = BASE + "/{category_id}"


def _store(ctx: Ctx):
    return ctx.stores().categories


@api(bp, "GET", BASE, summary="List categories, ordered by sort_order then name", tag="categories",
     query=s.CategoryListQuery, response=s.page_of(s.CategoryOut), list_response=True)
def list_categories(ctx: Ctx):
    params = ctx.query()
    tree = cases.tree_of(_store(ctx))
    chosen = [c for c in tree.ordered() if params.scope is None or SCOPES[params.scope](c)]
    page, next_cursor = page_of_list(chosen, lambda c: list(order_key(c)), tenant_id=ctx.tenant_id,
                                     scope=query_scope("categories", {"scope": params.scope}), limit=params.limit,
                                     cursor=params.cursor)
    return {"items": [tree.view(c) for c in page], "next_cursor": next_cursor}


@api(bp, "POST", BASE, summary="Create a category", need="manager", tag="categories", body=s.CategoryCreate,
     response=s.CategoryOut, status=201, idempotent=True)
def create_category(ctx: Ctx):
    data = ctx.body().model_dump(exclude_none=True)
    if data.get("is_system") and not ctx.principal.at_least("admin"):
        raise Forbidden("only an admin may create a system category")
    category, tree = cases.create_category(_store(ctx), data, tenant_id=ctx.tenant_id, actor=ctx.actor)
    return tree.view(category)


@api(bp, "GET", ONE, summary="Get a category", tag="categories", response=s.CategoryOut)
def get_category(ctx: Ctx, category_id: str):
    category, tree = cases.get_category(_store(ctx), category_id)
    return tree.view(category)


@api(bp, "PATCH", ONE, summary="Update the named fields of a category", need="manager", tag="categories",
     body=s.CategoryUpdate, response=s.CategoryOut)
def update_category(ctx: Ctx, category_id: str):
    body = ctx.body()
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    category, tree = cases.update_category(_store(ctx), category_id, changes)
    return tree.view(category)


@api(bp, "DELETE", ONE, summary="Delete (soft) a category without children", need="admin", tag="categories",
     status=204)
def delete_category(ctx: Ctx, category_id: str):
    cases.delete_category(_store(ctx), category_id)
    return Response(body="", status_code=204)


@api(bp, "GET", ONE + "/descendants", summary="Every category below this one, flat, in tree order",
     tag="categories", query=s.ListQuery, response=s.page_of(s.CategoryOut), list_response=True)
def descendants(ctx: Ctx, category_id: str):
    params = ctx.query()
    _, tree = cases.get_category(_store(ctx), category_id)
    # Tree order has no key of its own: a page resumes after the n-th category of it.
    numbered = list(enumerate(tree.descendants(category_id)))
    page, next_cursor = page_of_list(numbered, lambda n: [n[0], n[1].id], tenant_id=ctx.tenant_id,
                                     scope=query_scope(f"category-descendants:{category_id}", {}),
                                     limit=params.limit, cursor=params.cursor)
    return {"items": [tree.view(c) for _, c in page], "next_cursor": next_cursor}


@api(bp, "POST", ONE + "/recount", summary="Recalculate clients_count now", need="manager", tag="categories",
     response=s.CategoryOut)
def recount(ctx: Ctx, category_id: str):
    stores = ctx.stores()
    category, tree = cases.get_category(stores.categories, category_id)
    count = cases.recount(stores, category_id)
    return tree.view(category.model_copy(update={"clients_count": count}))
