"""The category tree's rules in memory: paths, depth, descendants, order, parent checks, slugs."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain.categories import MAX_DEPTH, Category, Tree
from chalicelib.domain.category_cases import check_assignable, with_descendants
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.slugs import slug_candidates, slugify

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def _cat(id_, name, parent=None, **extra) -> Category:
    return Category(id=id_, tenant_id="t1", name=name, slug=slugify(name), parent_id=parent, created_at=NOW,
                    updated_at=NOW, **extra)


@pytest.fixture
def tree() -> Tree:
    return Tree([_cat("e", "Events"), _cat("c", "Corporate", "e"), _cat("f", "Conferences", "c"),
                 _cat("w", "Weddings", "e", sort_order=-1), _cat("x", "Gone", "e", deleted_at=NOW)])


def test_full_path_and_depth_follow_the_parents(tree):
    assert tree.full_path("f") == "Events > Corporate > Conferences"
    assert [tree.depth(i) for i in ("e", "c", "f")] == [0, 1, 2]


def test_descendants_are_flat_depth_first_in_sort_order_without_deleted_ones(tree):
    assert [c.id for c in tree.descendants("e")] == ["w", "c", "f"]
    assert with_descendants(tree, "c") == ["c", "f"]


def test_a_category_cannot_move_below_itself_or_its_descendants(tree):
    for parent in ("e", "f"):
        with pytest.raises(ValidationFailed) as err:
            tree.check_parent("e", parent)
        assert err.value.details[0]["field"] == "parent_id"
    tree.check_parent("f", "w")  # a sideways move is fine


def test_a_deleted_or_unknown_parent_is_refused(tree):
    for parent in ("x", "nope"):
        with pytest.raises(ValidationFailed):
            tree.check_parent(None, parent)


def test_the_tree_has_a_depth_limit_counting_the_subtree_moved():
    chain = [_cat("0", "L0")] + [_cat(str(n), f"L{n}", str(n - 1)) for n in range(1, MAX_DEPTH)]
    deep = Tree(chain)
    with pytest.raises(ValidationFailed):
        deep.check_parent(None, str(MAX_DEPTH - 1))
    deep.check_parent(None, str(MAX_DEPTH - 2))
    with pytest.raises(ValidationFailed):
        Tree(chain + [_cat("a", "A"), _cat("b", "B", "a")]).check_parent("a", str(MAX_DEPTH - 2))


def test_new_assignments_need_live_active_categories(tree):
    inactive = Tree([*tree.by_id.values(), _cat("i", "Old", is_active=False)])
    with pytest.raises(ValidationFailed) as err:
        check_assignable(inactive, ["e", "x", "i"])
    assert [d["field"] for d in err.value.details] == ["category_ids.1", "category_ids.2"]
    check_assignable(inactive, ["e", "i"], already=["i"])


def test_slugs_are_ascii_words_with_numbered_alternatives():
    assert slugify("  Théâtre & Opéra!! ") == "theatre-opera"
    assert slugify("***") == "item"
    candidates = slug_candidates("VIP Clients")
    assert [next(candidates) for _ in range(3)] == ["vip-clients", "vip-clients-2", "vip-clients-3"]
