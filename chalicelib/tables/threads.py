"""Thread repository: threads live in their client's partition next to its communications."""
from __future__ import annotations

from pynamodb.exceptions import PutError

from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.threads import Stats, Thread
from chalicelib.tables import keys
from chalicelib.tables.base import configure
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.items import ThreadItem
from chalicelib.tables.records import fields_of, record_from


def _item(thread: Thread) -> ThreadItem:
    return ThreadItem(keys.client_pk(thread.tenant_id, thread.client_id), keys.thread_sk(thread.id),
                      **fields_of(thread))


def _thread(item: ThreadItem) -> Thread:
    return record_from(Thread, item)


class ThreadRepository:
    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    def add(self, thread: Thread) -> Thread:
        with storage_errors():
            try:
                _item(thread).save(condition=ThreadItem.pk.does_not_exist())
            except PutError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    raise Conflict("conflict", "a thread with this id exists") from exc
                raise
        return thread

    def put(self, thread: Thread) -> Thread:
        with storage_errors():
            _item(thread).save(condition=ThreadItem.pk.exists())
        return thread

    def get(self, client_id: str, thread_id: str) -> Thread:
        with storage_errors():
            try:
                return _thread(ThreadItem.get(keys.client_pk(self.tenant_id, client_id), keys.thread_sk(thread_id),
                                              consistent_read=True))
            except ThreadItem.DoesNotExist:
                raise NotFound(f"thread {thread_id} not found") from None

    def of_client(self, client_id: str) -> list[Thread]:
        with storage_errors():
            return [_thread(i) for i in ThreadItem.query(keys.client_pk(self.tenant_id, client_id),
                                                         ThreadItem.sk.startswith(keys.THREAD_PREFIX),
                                                         consistent_read=True)]

    def set_stats(self, thread: Thread, stats: Stats) -> None:
        """Derived counts from the stream handler; written only when they differ."""
        count, last, preview = stats
        actions = [ThreadItem.messages_count.set(count),
                   ThreadItem.last_activity_at.set(last) if last else ThreadItem.last_activity_at.remove(),
                   ThreadItem.preview.set(preview) if preview else ThreadItem.preview.remove()]
        with storage_errors():
            ThreadItem._get_connection().update_item(
                keys.client_pk(self.tenant_id, thread.client_id), keys.thread_sk(thread.id), actions=actions,
                condition=ThreadItem.pk.exists())
