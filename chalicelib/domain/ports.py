"""What the use cases need of storage, as Protocols: tables.stores.Stores implements them, tests' FakeStores too."""
from __future__ import annotations

from typing import Any, Protocol

# A page's opaque position: where the next page starts. Only storage reads it; the HTTP edge signs and encodes it.
Position = dict[str, Any]


# --- clients, categories, settings -------------------------------------------------------------------------------
class ClientStore(Protocol):
    ...


class SettingsStore(Protocol):
    ...


class CategoryStore(Protocol):
    ...


# --- contacts, portal, Node platform, rate limits ----------------------------------------------------------------
class ContactStore(Protocol):
    ...


class PortalStore(Protocol):
    ...


class NodeStore(Protocol):
    ...


class RateLimitStore(Protocol):
    ...


# --- communications, threads, inbound mail, the activity timeline ------------------------------------------------
class CommunicationStore(Protocol):
    ...


class ThreadStore(Protocol):
    ...


class InboxStore(Protocol):
    ...


class ActivityStore(Protocol):
    ...


# --- segments, scores and facts, tasks and associations, jobs, imports -------------------------------------------
class SegmentStore(Protocol):
    ...


class FactStore(Protocol):
    ...


class TaskStore(Protocol):
    ...


class AssociationStore(Protocol):
    ...


class JobStore(Protocol):
    ...


class ImportStore(Protocol):
    ...


class Stores(Protocol):
    """Every repository of one tenant (read-only properties, so any object holding such repositories is one)."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def actor(self) -> str | None: ...
    @property
    def clients(self) -> ClientStore: ...
    @property
    def settings(self) -> SettingsStore: ...
    @property
    def categories(self) -> CategoryStore: ...
    @property
    def contacts(self) -> ContactStore: ...
    @property
    def portal(self) -> PortalStore: ...
    @property
    def node(self) -> NodeStore: ...
    @property
    def rate_limits(self) -> RateLimitStore: ...
    @property
    def communications(self) -> CommunicationStore: ...
    @property
    def threads(self) -> ThreadStore: ...
    @property
    def inbox(self) -> InboxStore: ...
    @property
    def activity(self) -> ActivityStore: ...
    @property
    def segments(self) -> SegmentStore: ...
    @property
    def facts(self) -> FactStore: ...
    @property
    def tasks(self) -> TaskStore: ...
    @property
    def associations(self) -> AssociationStore: ...
    @property
    def jobs(self) -> JobStore: ...
    @property
    def imports(self) -> ImportStore: ...

    def claim_inbound_address(self, address: str, previous: str | None) -> None: ...


class Directory(Protocol):
    """What spans tenants."""

    def tenants(self, after: str | None = None) -> Any: ...
    def tenant_of_address(self, address: str) -> str | None: ...
