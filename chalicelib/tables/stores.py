"""Every repository of one tenant, handed to the use cases as one object."""
from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.tables.categories import CategoryRepository
from chalicelib.tables.clients import ClientRepository
from chalicelib.tables.communications import CommunicationRepository
from chalicelib.tables.contacts import ContactRepository
from chalicelib.tables.facts import FactRepository
from chalicelib.tables.imports import ImportRepository
from chalicelib.tables.inbox import InboxRepository
from chalicelib.tables.jobs import JobRepository
from chalicelib.tables.rate_limits import RateLimitRepository
from chalicelib.tables.segments import SegmentRepository
from chalicelib.tables.settings import SettingsRepository
from chalicelib.tables.threads import ThreadRepository


@dataclass
class Stores:
    tenant_id: str
    actor: str | None = None  # the person whose request this is: stamped on the changes they make
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

    def __post_init__(self) -> None:
        # Repositories only remember the tenant: building them all costs nothing and reads nothing.
        t = self.tenant_id
        self.clients = ClientRepository(t, self.actor)
        self.contacts = ContactRepository(t, self.actor)
        self.settings = SettingsRepository(t)
        self.communications = CommunicationRepository(t)
        self.threads = ThreadRepository(t)
        self.inbox = InboxRepository(t)
        self.categories = CategoryRepository(t)
        self.segments = SegmentRepository(t)
        self.facts = FactRepository(t)
        self.jobs = JobRepository(t)
        self.imports = ImportRepository(t)
        self.rate_limits = RateLimitRepository(t)
