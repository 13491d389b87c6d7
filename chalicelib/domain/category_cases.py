"""Category use cases: the tree, create, change and delete in it, recount, and checking a client's category ids."""
from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from ulid import ULID

from chalicelib.domain.categories import SCOPES, Category, Tree
from chalicelib.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from chalicelib.domain.ports import Stores
from chalicelib.domain.retry import retrying
from chalicelib.domain.slugs import slug_candidates
from chalicelib.domain.values import utcnow

NOT_NULL = ("name", "is_active", "is_public", "sort_order")


def tree_of(stores: Stores) -> Tree:
    """The tenant's live categories as a tree."""
    return Tree(stores.categories.snapshot()[0])


def _read(stores: Stores, category_id: str) -> tuple[Category, Tree, int]:
    """The category, the tree it is in and the tree's version; 404 for an unknown or deleted category."""
    categories, version = stores.categories.snapshot()
    tree = Tree(categories)
    if category_id not in tree:
        raise NotFound(f"category {category_id} not found")
    return tree.by_id[category_id], tree, version


def list_categories(stores: Stores, scope: str | None = None) -> tuple[list[Category], Tree]:
    """The categories of a scope (all without one) in tree order (sort_order, then name), and their tree."""
    tree = tree_of(stores)
    return [c for c in tree.ordered() if scope is None or SCOPES[scope](c)], tree


def get_category(stores: Stores, category_id: str) -> tuple[Category, Tree]:
    category, tree, _ = _read(stores, category_id)
    return category, tree


def descendants(stores: Stores, category_id: str) -> tuple[list[Category], Tree]:
    """Every category below this one, flat, in tree order; 404 for an unknown category."""
    _, tree, _ = _read(stores, category_id)
    return tree.descendants(category_id), tree


def create_category(stores: Stores, data: dict[str, Any], *, admin: bool = False,
                    now: datetime | None = None) -> tuple[Category, Tree]:
    """A new category with a slug unique in the tenant; a concurrent tree change makes it check again. Only an
    `admin` creates a system category."""
    if data.get("is_system") and not admin:
        raise Forbidden("only an admin may create a system category")

    def attempt() -> tuple[Category, Tree]:
        categories, version = stores.categories.snapshot()
        tree = Tree(categories)
        tree.check_parent(None, data.get("parent_id"))
        taken = {c.slug for c in tree.by_id.values()}
        at = now or utcnow()
        category = Category(**data, id=str(ULID.from_datetime(at)), tenant_id=stores.tenant_id,
                            slug=next(s for s in slug_candidates(data["name"]) if s not in taken),
                            created_by=stores.actor, created_at=at, updated_at=at)
        # A slug taken meanwhile is a VersionConflict: the next snapshot shows it.
        stores.categories.create(category, version)
        return category, Tree([*tree.by_id.values(), category])
    return retrying(attempt, "the category tree")


def update_category(stores: Stores, category_id: str, changes: dict[str, Any],
                    now: datetime | None = None) -> tuple[Category, Tree]:
    """Write the named fields; a new parent is checked against the tree as it is when written."""
    for key in NOT_NULL:
        if key in changes and changes[key] is None:
            raise ValidationFailed.field(key, "may not be null")

    def attempt() -> tuple[Category, Tree]:
        current, tree, version = _read(stores, category_id)
        if "parent_id" in changes:
            tree.check_parent(category_id, changes["parent_id"])
        updated = current.model_copy(update={**changes, "updated_at": now or utcnow()})
        if updated.model_copy(update={"updated_at": current.updated_at}) == current:
            return current, tree
        stores.categories.save(updated, version)
        return updated, Tree([*(c for c in tree.by_id.values() if c.id != category_id), updated])
    return retrying(attempt, "the category tree")


def delete_category(stores: Stores, category_id: str, now: datetime | None = None) -> None:
    """Soft delete: never a system category (deactivate it), never one with children."""
    def attempt() -> None:
        current, tree, version = _read(stores, category_id)
        if current.is_system:
            raise Conflict("system_category", "system categories cannot be deleted; deactivate it instead")
        if tree.children(category_id):
            raise Conflict("has_children", "move or delete the category's children first")
        stores.categories.delete(current.model_copy(update={"deleted_at": now or utcnow()}), version)
    retrying(attempt, "the category tree")


def check_assignable(tree: Tree, wanted: list[str], already: Collection[str] = ()) -> None:
    """Category ids newly given to a client must name live, active categories (422 naming each)."""
    details = []
    for n, category_id in enumerate(wanted):
        if category_id in already:
            continue
        category = tree.by_id.get(category_id)
        if category is None:
            details.append({"field": f"category_ids.{n}", "message": f"{category_id} is not a category"})
        elif not category.is_active:
            details.append({"field": f"category_ids.{n}", "message": f"{category_id} is inactive"})
    if details:
        raise ValidationFailed("category_ids are invalid", details)


def with_descendants(tree: Tree, category_id: str) -> list[str]:
    """The category and everything below it: what `?category_id=` matches."""
    return [category_id, *(c.id for c in tree.descendants(category_id))]


def recount(stores: Stores, category_id: str) -> int:
    """`clients_count` from the category's entries (non-archived clients); exact whatever was replayed."""
    count = stores.clients.count_live(("category", category_id))
    stores.categories.set_clients_count(category_id, count)
    return count


def recount_now(stores: Stores, category_id: str) -> tuple[Category, Tree]:
    """The category with its clients_count recalculated now (404 for an unknown category)."""
    category, tree = get_category(stores, category_id)
    return category.model_copy(update={"clients_count": recount(stores, category_id)}), tree
