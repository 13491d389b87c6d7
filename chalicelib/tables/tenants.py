"""The tenant directory: which tenants exist, so scheduled jobs visit each one by key."""
from __future__ import annotations

from collections.abc import Iterator

from pynamodb.exceptions import PutError

from chalicelib.domain.values import utcnow
from chalicelib.tables import keys
from chalicelib.tables.base import RESET_HOOKS, configure
from chalicelib.tables.connection import bookkeeping
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.items import TenantItem

_known: set[str] = set()  # per Lambda container: register each tenant once, not on every write
RESET_HOOKS.append(_known.clear)


def register_tenant(tenant_id: str) -> None:
    if tenant_id in _known:
        return
    configure()
    with bookkeeping(), storage_errors():  # the directory entry is no effect of the request that adds it
        try:
            TenantItem(keys.TENANT_DIRECTORY_PK, tenant_id, first_seen_at=utcnow()).save(
                condition=TenantItem.sk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
    _known.add(tenant_id)


def all_tenants(after: str | None = None) -> Iterator[str]:
    """Every tenant id in id order, from after `after` (a page's last id) on."""
    configure()
    condition = TenantItem.sk > after if after else None
    with storage_errors():
        for item in TenantItem.query(keys.TENANT_DIRECTORY_PK, condition, page_size=500):
            yield item.sk
