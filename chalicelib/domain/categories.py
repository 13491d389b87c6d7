"""The category tree: slugs, full paths, depth, descendants, scopes, order, and the rules for parents."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from pydantic import Field

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.values import Record

MAX_DEPTH = 10  # a root is depth 0; deeper trees are a data-entry accident, not a taxonomy


class Category(Record):
    id: str
    tenant_id: str = Field(exclude=True)
    name: str
    slug: str
    description: str | None = None
    color: str | None = None
    icon: str | None = None
    parent_id: str | None = None
    is_system: bool = False
    is_active: bool = True
    is_public: bool = True
    sort_order: int = 0
    clients_count: int = 0
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = Field(default=None, exclude=True)


def order_key(category: Category) -> tuple:
    """`sort_order` (lower first), then name ignoring case; the id keeps equal names stable."""
    return category.sort_order, category.name.casefold(), category.id


SCOPES: dict[str, Callable[[Category], bool]] = {
    "active": lambda c: c.is_active,
    "system": lambda c: c.is_system,
    "custom": lambda c: not c.is_system,
    "top_level": lambda c: c.parent_id is None,
}


class Tree:
    """The live categories of one tenant, with the hierarchy questions answered from memory."""

    def __init__(self, categories: Iterable[Category]):
        self.by_id = {c.id: c for c in categories if c.deleted_at is None}
        self._children: dict[str | None, list[Category]] = defaultdict(list)
        for c in self.by_id.values():
            self._children[c.parent_id].append(c)
        for siblings in self._children.values():
            siblings.sort(key=order_key)

    def __contains__(self, category_id: str) -> bool:
        return category_id in self.by_id

    def ancestors(self, category_id: str) -> list[Category]:
        """Root first, ending with the category itself."""
        chain, seen = [], set()
        node = self.by_id.get(category_id)
        while node is not None and node.id not in seen:
            seen.add(node.id)
            chain.append(node)
            node = self.by_id.get(node.parent_id) if node.parent_id else None
        return chain[::-1]

    def full_path(self, category_id: str) -> str:
        return " > ".join(c.name for c in self.ancestors(category_id))

    def depth(self, category_id: str) -> int:
        return len(self.ancestors(category_id)) - 1

    def children(self, category_id: str | None) -> list[Category]:
        return list(self._children.get(category_id, []))

    def descendants(self, category_id: str) -> list[Category]:
        """Every category below, depth first in tree order (a flat list)."""
        out: list[Category] = []
        stack = self.children(category_id)[::-1]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(self.children(node.id)[::-1])
        return out

    def height(self, category_id: str) -> int:
        """Levels below the category: 0 for a leaf."""
        below = self.descendants(category_id)
        return max((self.depth(c.id) for c in below), default=self.depth(category_id)) - self.depth(category_id)

    def ordered(self) -> list[Category]:
        """Every live category, ordered by `sort_order` then name."""
        return sorted(self.by_id.values(), key=order_key)

    def view(self, category: Category) -> dict[str, Any]:
        """The answer for one category: its fields plus where it sits in the tree."""
        has_children = bool(self._children.get(category.id))
        return {**category.public(), "full_path": self.full_path(category.id), "depth": self.depth(category.id),
                "has_children": has_children, "is_leaf": not has_children}

    def check_parent(self, category_id: str | None, parent_id: str | None) -> None:
        """A parent must exist and may not be the category itself or one of its descendants (422)."""
        if parent_id is None:
            return
        if parent_id not in self:
            raise ValidationFailed.field("parent_id", "is not a category of this tenant")
        if category_id is not None and (parent_id == category_id
                                        or parent_id in {c.id for c in self.descendants(category_id)}):
            raise ValidationFailed.field("parent_id", "may not be the category itself or one of its descendants")
        below = self.height(category_id) if category_id is not None and category_id in self else 0
        if self.depth(parent_id) + 1 + below >= MAX_DEPTH:
            raise ValidationFailed.field("parent_id", f"the tree may be at most {MAX_DEPTH} levels deep")

