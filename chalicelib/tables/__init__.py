"""Storage: the single DynamoDB table, its keys and the repositories over it."""
from __future__ import annotations

from chalicelib.tables.base import TableItem, configure, health_connection, reset_connections

__all__ = ["create_table", "reset_connections", "table_reachable"]


def create_table() -> None:
    """Create the table with its indexes, stream and TTL unless it exists (safe to call repeatedly)."""
    configure()
    if not TableItem.exists():
        TableItem.create_table(wait=True)
    connection = TableItem._get_connection().connection
    try:
        connection.update_time_to_live(TableItem.Meta.table_name, "expires_at")
    except Exception:  # already enabled, or an emulator without TTL support: reads check expiry anyway
        pass


def table_reachable() -> bool:
    """True when the table answers a DescribeTable (the health check: one short attempt)."""
    try:
        health_connection().describe_table()
        return True
    except Exception:
        return False
