"""Category repository: the tenant's tree in one partition, every write guarded by the tree's version."""
from __future__ import annotations

from collections.abc import Callable

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.domain.categories import Category
from chalicelib.domain.errors import VersionConflict
from chalicelib.tables import keys
from chalicelib.tables.base import TableItem, configure
from chalicelib.tables.errors import reason_codes, storage_errors
from chalicelib.tables.records import as_read, fields_of, record_from
from chalicelib.tables.transactions import commit
from chalicelib.tables.work_items import CategoryItem, SlugItem, TreeItem

DERIVED = ("clients_count",)  # the stream's recount, written without the tree's version


def _item(category: Category) -> CategoryItem:
    return CategoryItem(keys.categories_pk(category.tenant_id), keys.category_sk(category.id),
                        **fields_of(category))


def _category(item: CategoryItem) -> Category:
    return record_from(Category, item)


class CategoryRepository:
    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id
        self.pk = keys.categories_pk(tenant_id)

    def snapshot(self) -> tuple[list[Category], int]:
        """Every category (deleted ones too) and the tree's version, in one consistent Query."""
        categories: list[Category] = []
        version = 0
        with storage_errors():
            for item in TableItem.query(self.pk, consistent_read=True, page_size=500):
                if isinstance(item, TreeItem):
                    version = int(item.v)
                elif isinstance(item, CategoryItem):
                    categories.append(_category(item))
        return categories, version

    def get(self, category_id: str) -> Category | None:
        with storage_errors():
            try:
                return _category(CategoryItem.get(self.pk, keys.category_sk(category_id), consistent_read=True))
            except CategoryItem.DoesNotExist:
                return None

    def create(self, category: Category, tree_version: int) -> None:
        def build(tx: TransactWrite) -> None:
            self._guard(tx, tree_version)
            tx.save(_item(category), condition=CategoryItem.pk.does_not_exist())
            tx.save(self._slug(category), condition=SlugItem.pk.does_not_exist())

        self._run(build)

    def save(self, category: Category, tree_version: int) -> None:
        def build(tx: TransactWrite) -> None:
            self._guard(tx, tree_version)
            tx.save(_item(category), condition=CategoryItem.pk.exists() & as_read(CategoryItem, category, DERIVED))

        self._run(build)

    def delete(self, category: Category, tree_version: int) -> None:
        """Soft delete: the item stays, marked deleted; its slug is free again."""
        def build(tx: TransactWrite) -> None:
            self._guard(tx, tree_version)
            tx.save(_item(category), condition=CategoryItem.pk.exists() & as_read(CategoryItem, category, DERIVED))
            tx.delete(self._slug(category))

        self._run(build)

    def set_clients_count(self, category_id: str, count: int) -> None:
        """The stream's recount; no tree version bump, and never on a deleted category."""
        with storage_errors():
            try:
                TableItem._get_connection().update_item(
                    self.pk, keys.category_sk(category_id), actions=[CategoryItem.clients_count.set(count)],
                    condition=CategoryItem.pk.exists() & CategoryItem.deleted_at.does_not_exist())
            except UpdateError as exc:  # a deleted or unknown category has no count to keep
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise

    def _slug(self, category: Category) -> SlugItem:
        return SlugItem(keys.slug_pk(self.tenant_id, "category", category.slug), keys.UNIQUE_SK,
                        owner_id=category.id)

    def _guard(self, tx: TransactWrite, version: int) -> None:
        condition = TreeItem.v == version if version else TreeItem.pk.does_not_exist()
        tx.update(TreeItem(self.pk, keys.TREE_SK), actions=[TreeItem.v.set(version + 1), TreeItem.kind.set(TreeItem)],
                  condition=condition)

    @staticmethod
    def _run(build: Callable[[TransactWrite], None]) -> None:
        try:
            commit(build)
        except TransactWriteError as exc:
            # The tree's version, a slug or a count changed since the snapshot: the use case reads it again.
            if "ConditionalCheckFailed" in reason_codes(exc):
                raise VersionConflict("the category tree changed meanwhile") from exc
            raise
