"""Category use cases: create, change and delete in the tree, and checking a client's category ids."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ulid import ULID

from chalicelib.domain.categories import Category, Tree
from chalicelib.domain.errors import Conflict, NotFound, ValidationFailed
from chalicelib.domain.retry import retrying
from chalicelib.domain.slugs import slug_candidates
from chalicelib.domain.values import utcnow

NOT_NULL = ("name", "is_active", "is_public", "sort_order")


class CategoryStore(Protocol):
    def snapshot(self) -> tuple[list[Category], int]: ...
    def create(self, category: Category, tree_version: int) -> None: ...
    def save(self, category: Category, tree_version: int) -> None: ...
    def delete(self, category: Category, tree_version: int) -> None: ...


def tree_of(store: CategoryStore) -> Tree:
    return Tree(store.snapshot()[0])


def _read(store: CategoryStore, category_id: str) -> tuple[Category, Tree, int]:
    """The category, the tree it is in and the tree's version; 404 for an unknown or deleted category."""
    categories, version = store.snapshot()
    tree = Tree(categories)
    if category_id not in tree:
        raise NotFound(f"category {category_id} not found")
    return tree.by_id[category_id], tree, version


def get_category(store: CategoryStore, category_id: str) -> tuple[Category, Tree]:
    category, tree, _ = _read(store, category_id)
    return category, tree


def create_category(store: CategoryStore, data: dict[str, Any], *, tenant_id: str, actor: str | None,
                    now: datetime | None = None) -> tuple[Category, Tree]:
    """A new category with a slug unique in the tenant; a concurrent tree change makes it check again."""
    def attempt() -> tuple[Category, Tree]:
        categories, version = store.snapshot()
        tree = Tree(categories)
        tree.check_parent(None, data.get("parent_id"))
        taken = {c.slug for c in tree.by_id.values()}
        at = now or utcnow()
        category = Category(**data, id=str(ULID.from_datetime(at)), tenant_id=tenant_id,
                            slug=next(s for s in slug_candidates(data["name"]) if s not in taken),
                            created_by=actor, created_at=at, updated_at=at)
        store.create(category, version)  # a slug taken meanwhile is a VersionConflict: the next snapshot shows it
        return category, Tree([*tree.by_id.values(), category])
    return retrying(attempt, "the category tree")


def update_category(store: CategoryStore, category_id: str, changes: dict[str, Any],
                    now: datetime | None = None) -> tuple[Category, Tree]:
    """Write the named fields; a new parent is checked against the tree as it is when written."""
    for key in NOT_NULL:
        if key in changes and changes[key] is None:
            raise ValidationFailed.field(key, "may not be null")

    def attempt() -> tuple[Category, Tree]:
        current, tree, version = _read(store, category_id)
        if "parent_id" in changes:
            tree.check_parent(category_id, changes["parent_id"])
        updated = current.model_copy(update={**changes, "updated_at": now or utcnow()})
        if updated.model_copy(update={"updated_at": current.updated_at}) == current:
            return current, tree
        store.save(updated, version)
        return updated, Tree([*(c for c in tree.by_id.values() if c.id != category_id), updated])
    return retrying(attempt, "the category tree")


def delete_category(store: CategoryStore, category_id: str, now: datetime | None = None) -> None:
    """Soft delete: never a system category (deactivate it), never one with children."""
    def attempt() -> None:
        current, tree, version = _read(store, category_id)
        if current.is_system:
            raise Conflict("system_category", "system categories cannot be deleted; deactivate it instead")
        if tree.children(category_id):
            raise Conflict("has_children", "move or delete the category's children first")
        store.delete(current.model_copy(update={"deleted_at": now or utcnow()}), version)
    retrying(attempt, "the category tree")


def check_assignable(tree: Tree, wanted: list[str], already: list[str] = ()) -> None:
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


def recount(stores: Any, category_id: str) -> int:
    """`clients_count` from the category's entries (non-archived clients); exact whatever was replayed."""
    count = stores.clients.count_live(("category", category_id))
    stores.categories.set_clients_count(category_id, count)
    return count

