"""Task and association repositories: both live in their client's partition (`TASK#<id>`, `ASSOC#<client id>`)."""
from __future__ import annotations

from datetime import date

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.domain.associations import Association
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.tasks import Task
from chalicelib.tables import keys
from chalicelib.tables.base import configure
from chalicelib.tables.errors import reason_codes, storage_errors
from chalicelib.tables.records import fields_of, record_from
from chalicelib.tables.transactions import commit
from chalicelib.tables.work_items import AssociationItem, TaskItem


def _stored(value):
    """Dates are stored as YYYY-MM-DD strings; everything else as the item's attribute takes it."""
    return value.isoformat() if type(value) is date else value


def _task_item(task: Task) -> TaskItem:
    data = {name: _stored(value) for name, value in fields_of(task).items()}
    return TaskItem(keys.client_pk(task.tenant_id, task.client_id), keys.fact_sk(keys.TASK_PREFIX, task.id), **data)


class TaskRepository:
    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    def _keys(self, client_id: str, task_id: str) -> tuple[str, str]:
        return keys.client_pk(self.tenant_id, client_id), keys.fact_sk(keys.TASK_PREFIX, task_id)

    def add(self, task: Task) -> Task:
        with storage_errors():
            try:
                _task_item(task).save(condition=TaskItem.pk.does_not_exist())
            except PutError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    raise Conflict("conflict", "a task with this id exists") from exc
                raise
        return task

    def get(self, client_id: str, task_id: str) -> Task:
        with storage_errors():
            try:
                return record_from(Task, TaskItem.get(*self._keys(client_id, task_id), consistent_read=True))
            except TaskItem.DoesNotExist:
                raise NotFound(f"task {task_id} not found") from None

    def of_client(self, client_id: str) -> list[Task]:
        with storage_errors():
            return [record_from(Task, i) for i in TaskItem.query(
                keys.client_pk(self.tenant_id, client_id), TaskItem.sk.startswith(keys.TASK_PREFIX),
                consistent_read=True)]

    def update(self, old: Task, new: Task) -> Task:
        """Write only the attributes that differ, so concurrent changes of other fields survive."""
        actions = [getattr(TaskItem, name).remove() if value is None else getattr(TaskItem, name).set(_stored(value))
                   for name, value in fields_of(new).items() if value != getattr(old, name)]
        item = TaskItem(*self._keys(new.client_id, new.id))
        with storage_errors():
            try:
                item.update(actions=actions, condition=TaskItem.pk.exists())
            except UpdateError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    raise NotFound(f"task {new.id} not found") from exc
                raise
        return record_from(Task, item)


class AssociationRepository:
    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    def _item(self, side: Association) -> AssociationItem:
        return AssociationItem(keys.client_pk(self.tenant_id, side.client_id),
                               keys.fact_sk(keys.ASSOCIATION_PREFIX, side.related_id), **fields_of(side))

    def get(self, client_id: str, related_id: str) -> Association | None:
        with storage_errors():
            try:
                return record_from(Association, AssociationItem.get(
                    keys.client_pk(self.tenant_id, client_id), keys.fact_sk(keys.ASSOCIATION_PREFIX, related_id),
                    consistent_read=True))
            except AssociationItem.DoesNotExist:
                return None

    def of_client(self, client_id: str) -> list[Association]:
        with storage_errors():
            return [record_from(Association, i) for i in AssociationItem.query(
                keys.client_pk(self.tenant_id, client_id), AssociationItem.sk.startswith(keys.ASSOCIATION_PREFIX),
                consistent_read=True)]

    def put_both(self, side: Association, other: Association) -> None:
        """Both sides in one transaction: a link is never seen from one side only."""
        def build(tx: TransactWrite) -> None:
            tx.save(self._item(side))
            tx.save(self._item(other))

        commit(build)

    def delete_both(self, client_id: str, related_id: str) -> None:
        def build(tx: TransactWrite) -> None:
            tx.delete(AssociationItem(keys.client_pk(self.tenant_id, client_id),
                                      keys.fact_sk(keys.ASSOCIATION_PREFIX, related_id)),
                      condition=AssociationItem.pk.exists())
            tx.delete(AssociationItem(keys.client_pk(self.tenant_id, related_id),
                                      keys.fact_sk(keys.ASSOCIATION_PREFIX, client_id)))

        try:
            commit(build)
        except TransactWriteError as exc:
            if "ConditionalCheckFailed" in reason_codes(exc):
                raise NotFound(f"client {client_id} is not linked to {related_id}") from None
            raise
