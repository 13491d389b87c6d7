"""The only way in to storage: every repository of one tenant as one `Stores`, and the cross-tenant directory."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib.domain.health_cases import Heartbeat
from chalicelib.tables import heartbeats
from chalicelib.tables.activity import ActivityRepository
from chalicelib.tables.categories import CategoryRepository
from chalicelib.tables.clients import ClientRepository
from chalicelib.tables.communications import CommunicationRepository
from chalicelib.tables.contacts import ContactRepository
from chalicelib.tables.duplicates import DuplicateRepository
from chalicelib.tables.facts import FactRepository
from chalicelib.tables.idempotency import IdempotencyStore, Replay, holding
from chalicelib.tables.imports import ImportRepository
from chalicelib.tables.inbox import InboxRepository, claim_address, tenant_of_address
from chalicelib.tables.jobs import JobRepository
from chalicelib.tables.node import NodeRepository
from chalicelib.tables.portal import PortalRepository
from chalicelib.tables.rate_limits import RateLimitRepository
from chalicelib.tables.segments import SegmentRepository
from chalicelib.tables.settings import SettingsRepository
from chalicelib.tables.streams import decode_record
from chalicelib.tables.tenants import all_tenants
from chalicelib.tables.threads import ThreadRepository
from chalicelib.tables.workspace import AssociationRepository, TaskRepository

if TYPE_CHECKING:
    from chalicelib.domain import ports

__all__ = ["Directory", "Replay", "Stores", "decode_record", "holding"]


@dataclass
class Stores:
    """A tenant's repositories. Building them reads nothing (each only remembers the tenant), so a request builds
    one `Stores` and hands it to its use case."""

    tenant_id: str
    actor: str | None = None  # the person whose request this is: stamped on the changes they make
    memo: bool = False  # settings, custom fields and the segment list read once (a stream batch's Stores)
    clients: ClientRepository = field(init=False)
    contacts: ContactRepository = field(init=False)
    settings: SettingsRepository = field(init=False)
    communications: CommunicationRepository = field(init=False)
    threads: ThreadRepository = field(init=False)
    inbox: InboxRepository = field(init=False)
    categories: CategoryRepository = field(init=False)
    segments: SegmentRepository = field(init=False)
    facts: FactRepository = field(init=False)
    jobs: JobRepository = field(init=False)
    imports: ImportRepository = field(init=False)
    rate_limits: RateLimitRepository = field(init=False)
    activity: ActivityRepository = field(init=False)
    portal: PortalRepository = field(init=False)
    node: NodeRepository = field(init=False)
    tasks: TaskRepository = field(init=False)
    associations: AssociationRepository = field(init=False)
    idempotency: IdempotencyStore = field(init=False)
    duplicates: DuplicateRepository = field(init=False)

    def __post_init__(self) -> None:
        t = self.tenant_id
        self.clients = ClientRepository(t, self.actor)
        self.contacts = ContactRepository(t, self.actor, self.clients)
        self.settings = SettingsRepository(t, memo=self.memo)
        self.communications = CommunicationRepository(t)
        self.threads = ThreadRepository(t)
        self.inbox = InboxRepository(t)
        self.categories = CategoryRepository(t)
        self.segments = SegmentRepository(t, memo=self.memo)
        self.facts = FactRepository(t)
        self.jobs = JobRepository(t)
        self.imports = ImportRepository(t)
        self.rate_limits = RateLimitRepository(t)
        self.activity = ActivityRepository(t)
        self.portal = PortalRepository(t)
        self.node = NodeRepository(t)
        self.tasks = TaskRepository(t)
        self.associations = AssociationRepository(t)
        self.idempotency = IdempotencyStore(t)
        self.duplicates = DuplicateRepository(t, self.actor)

    def claim_inbound_address(self, address: str, previous: str | None) -> None:
        """Route mail for `address` to this tenant; another tenant's address is a 409."""
        claim_address(self.tenant_id, address, previous)


class Directory:
    """What spans tenants: which tenants exist, which tenant an inbound address belongs to, the functions'
    heartbeats."""

    def tenants(self, after: str | None = None) -> Iterator[str]:
        return all_tenants(after)

    def tenant_of_address(self, address: str) -> str | None:
        return tenant_of_address(address)

    def beat(self, name: str, at: datetime, *, lag_seconds: float | None = None, records: int | None = None) -> bool:
        return heartbeats.beat(name, at, lag_seconds=lag_seconds, records=records)

    def heartbeat(self, name: str) -> Heartbeat | None:
        return heartbeats.last(name)


def _satisfies_the_ports(stores: Stores, directory: Directory) -> tuple[ports.Stores, ports.Directory]:
    """Never called: mypy checks here that these classes are what the use cases' Protocols ask for."""
    return stores, directory
