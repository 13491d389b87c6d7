"""Category routes: the tree, its scopes and descendants, and the clients-count recount; their models."""
from __future__ import annotations

from typing import Annotated, Literal

from chalice import Blueprint, Response
from pydantic import Field

from chalicelib.domain import category_cases
from chalicelib.domain.categories import Category, order_key
from chalicelib.handlers.fields import Color, Icon, Id, ListQuery, Strict, Text, out_model, page_of, patch_of
from chalicelib.handlers.pagination import page_of_list, query_scope
from chalicelib.handlers.routing import Ctx, api

bp = Blueprint(__name__)
BASE = "/v1/categories"
ONE = BASE + "/{category_id}"


class CategoryCreate(Strict):
    name: Annotated[str, Text(100, 1)]
    description: Annotated[str, Text(1000)] | None = None
    color: Color | None = None
    icon: Icon | None = None
    parent_id: Id | None = None
    is_system: bool = False
    is_active: bool = True
    is_public: bool = True
    sort_order: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] = 0


CategoryUpdate = patch_of("CategoryUpdate", CategoryCreate, not_null=category_cases.NOT_NULL, skip=("is_system",))

CategoryOut = out_model(
    "Category", Category,
    full_path=(str, ...), depth=(int, ...), has_children=(bool, ...), is_leaf=(bool, ...),
)


class CategoryListQuery(ListQuery):
    scope: Literal["active", "system", "custom", "top_level"] | None = None


@api(bp, "GET", BASE, summary="List categories, ordered by sort_order then name", tag="categories",
     query=CategoryListQuery, response=page_of(CategoryOut), list_response=True)
def list_categories(ctx: Ctx):
    params = ctx.query()
    chosen, tree = category_cases.list_categories(ctx.stores(), params.scope)
    page, next_cursor = page_of_list(chosen, lambda c: list(order_key(c)), tenant_id=ctx.tenant_id,
                                     scope=query_scope("categories", {"scope": params.scope}), limit=params.limit,
                                     cursor=params.cursor)
    return {"items": [tree.view(c) for c in page], "next_cursor": next_cursor}


@api(bp, "POST", BASE, summary="Create a category", need="manager", tag="categories", body=CategoryCreate,
     response=CategoryOut, status=201, idempotent=True)
def create_category(ctx: Ctx):
    data = ctx.body().model_dump(exclude_none=True)
    admin = ctx.principal is not None and ctx.principal.at_least("admin")
    category, tree = category_cases.create_category(ctx.stores(), data, admin=admin)
    return tree.view(category)


@api(bp, "GET", ONE, summary="Get a category", tag="categories", response=CategoryOut)
def get_category(ctx: Ctx, category_id: str):
    category, tree = category_cases.get_category(ctx.stores(), category_id)
    return tree.view(category)


@api(bp, "PATCH", ONE, summary="Update the named fields of a category", need="manager", tag="categories",
     body=CategoryUpdate, response=CategoryOut)
def update_category(ctx: Ctx, category_id: str):
    category, tree = category_cases.update_category(ctx.stores(), category_id, ctx.changes())
    return tree.view(category)


@api(bp, "DELETE", ONE, summary="Delete (soft) a category without children", need="admin", tag="categories",
     status=204)
def delete_category(ctx: Ctx, category_id: str):
    category_cases.delete_category(ctx.stores(), category_id)
    return Response(body="", status_code=204)


@api(bp, "GET", ONE + "/descendants", summary="Every category below this one, flat, in tree order",
     tag="categories", query=ListQuery, response=page_of(CategoryOut), list_response=True)
def descendants(ctx: Ctx, category_id: str):
    params = ctx.query()
    below, tree = category_cases.descendants(ctx.stores(), category_id)
    # Tree order has no key of its own: a page resumes after the n-th category of it.
    page, next_cursor = page_of_list(list(enumerate(below)), lambda n: [n[0], n[1].id], tenant_id=ctx.tenant_id,
                                     scope=query_scope(f"category-descendants:{category_id}", {}),
                                     limit=params.limit, cursor=params.cursor)
    return {"items": [tree.view(c) for _, c in page], "next_cursor": next_cursor}


@api(bp, "POST", ONE + "/recount", summary="Recalculate clients_count now", need="manager", tag="categories",
     response=CategoryOut)
def recount(ctx: Ctx, category_id: str):
    category, tree = category_cases.recount_now(ctx.stores(), category_id)
    return tree.view(category)
