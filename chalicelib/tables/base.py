"""The one table: its PynamoDB base model, indexes and lazy connection (item types: items.py, work_items.py)."""
from __future__ import annotations

from pynamodb.attributes import DiscriminatorAttribute, UnicodeAttribute
from pynamodb.connection import TableConnection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.config import get_settings
from chalicelib.tables.connection import Limits, table_connection, time_budget


class ByName(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_name"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    s_name = UnicodeAttribute(range_key=True)


class ByCreated(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_created"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    s_created = UnicodeAttribute(range_key=True)


class ByHealth(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_health"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    s_health = UnicodeAttribute(range_key=True)


class Gsi1(GlobalSecondaryIndex):
    """General lookup index (emails, message ids, follow-ups...) for later item types."""

    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Gsi2(GlobalSecondaryIndex):
    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class TableItem(Model):
    """Every item of the table: `pk`/`sk` keys and a `kind` discriminator."""

    class Meta:
        table_name = "unset"  # bound on first use by configure(), with the endpoint and the connection's bounds
        host: str | None  # declared, not set: PynamoDB's defaults apply until configure() sets them
        region: str
        connect_timeout_seconds: float
        read_timeout_seconds: float
        max_retry_attempts: int
        billing_mode = "PAY_PER_REQUEST"
        stream_view_type = "NEW_AND_OLD_IMAGES"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = DiscriminatorAttribute()
    by_name = ByName()
    by_created = ByCreated()
    by_health = ByHealth()
    gsi1 = Gsi1()
    gsi2 = Gsi2()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)


_configured_for: tuple | None = None
_health: TableConnection | None = None
HEALTH_READ_TIMEOUT = 2.0  # seconds: /v1/health answers 503 well inside 10 s when the database is frozen


def item_types() -> list[type[TableItem]]:
    """The table's model and every item type (each module of item types registers by subclassing)."""
    from chalicelib.tables import items, work_items  # noqa: F401 - importing them defines every item type

    found, todo = [], [TableItem]
    while todo:
        model = todo.pop()
        found.append(model)
        todo.extend(model.__subclasses__())
    return found


def retry_budget() -> float:
    """DB_RETRY_BUDGET, cut so that it ends one attempt and a second before the function's timeout."""
    return get_settings().request_db_budget


def limits() -> Limits:
    """Timeouts and attempts of every database call: DB_CONNECT_TIMEOUT, DB_READ_TIMEOUT within the budget."""
    s = get_settings()
    return Limits.within(retry_budget(), s.db_connect_timeout, s.db_read_timeout)


def configure() -> None:
    """Bind every model to the configured table and endpoint on one bounded connection; cheap after the first call."""
    global _configured_for, _health
    s = get_settings()
    bounds = limits()
    target = (s.table_name, s.dynamodb_endpoint, s.region, bounds)
    if _configured_for == target:
        return
    for model in item_types():
        model.Meta.table_name = s.table_name
        model.Meta.host = s.dynamodb_endpoint
        model.Meta.region = s.region
        # Also what PynamoDB uses should a model build its own connection (before configure() runs again).
        model.Meta.connect_timeout_seconds = bounds.connect
        model.Meta.read_timeout_seconds = bounds.read
        model.Meta.max_retry_attempts = bounds.attempts - 1
        model._connection = None
    shared = table_connection(TableItem, bounds)  # one botocore client (and connection pool) per process
    for model in item_types():
        model._connection = shared
    _health = None
    _configured_for = target


def request_budget():
    """The time budget one API request's database calls share (see retry_budget and connection.time_budget)."""
    return time_budget(retry_budget())


def health_connection() -> TableConnection:
    """A connection for the health check alone: one attempt, a short read timeout."""
    global _health
    configure()
    if _health is None:
        _health = table_connection(TableItem, Limits(limits().connect, HEALTH_READ_TIMEOUT, attempts=1))
    return _health


RESET_HOOKS: list = []  # per-process caches that belong to one table (see tenants.py)


def reset_connections() -> None:
    """Forget bindings, connections and table-bound caches (the environment changed: tests, the runner)."""
    global _configured_for, _health
    _configured_for = None
    _health = None
    for hook in RESET_HOOKS:
        hook()
    for model in item_types():
        model._connection = None
