"""The bench's bulk loader: realistic tenants built by the domain, their items from the repositories, batch-written."""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ulid import ULID

from chalicelib.domain.clients import Client, FacetRules, PrimaryContact, archive, generate_number, new_client
from chalicelib.domain.contacts import Contact, new_contact
from chalicelib.domain.search import fold
from chalicelib.domain.settings import ClientSettings

ACTOR = "bench-loader"
# Planted in a few names of every tenant, found by no other record: what the `q` benchmarks search for.
RARE_CLIENT_WORD = "Zyxquorbel"
RARE_CONTACT_WORD = "Qwyzzelmann"
RARE_COUNT = 5

FIRST = ["Acme", "Théâtre", "Lumière", "Nordic", "Bühne", "Crème", "Delta", "Échelle", "Forum", "Gala", "Halle",
         "Île", "Jazz", "Kino", "Atlas", "Aurora", "Basilisk", "Cobalt", "Dune", "Ember", "Fjord", "Granit", "Harbor",
         "Iris", "Juniper", "Kestrel", "Lotus", "Meridian", "Nimbus", "Opal", "Pavilion", "Quartz", "Riviera",
         "Saffron", "Tundra", "Umbra", "Velvet", "Willow", "Zenith", "Søndre", "Córdoba", "Mañana", "Grün"]
SECOND = ["Events", "Productions", "Venue", "Festival", "Agency", "Staging", "Sound", "Lighting", "Rentals",
          "Touring", "Arena", "Studios", "Collective", "Group", "Theatre", "Concerts", "Exhibitions", "Media",
          "Hospitality", "Catering", "Audio", "Visual", "Rigging", "Logistics", "Partners", "Creative"]
THIRD = ["B.V.", "GmbH", "Ltd", "SARL", "S.L.", "AB", "AG", "NV", "Oy", "S.p.A.", "", "", "", "& Co", "International"]
PLACES = [("NL", ["Amsterdam", "Rotterdam", "Utrecht", "Den Haag", "Eindhoven"]),
          ("BE", ["Bruxelles", "Antwerpen", "Gent", "Liège"]), ("DE", ["Köln", "Berlin", "München", "Hamburg"]),
          ("FR", ["Paris", "Lyon", "Marseille", "Lille"]), ("GB", ["London", "Manchester", "Bristol"]),
          ("ES", ["Sevilla", "Madrid", "Barcelona", "Málaga"]), ("IT", ["Milano", "Roma", "Torino"]),
          ("SE", ["Malmö", "Stockholm", "Göteborg"]), ("CH", ["Zürich", "Genève", "Basel"]),
          ("AT", ["Wien", "Graz"]), ("PL", ["Kraków", "Warszawa"]), ("PT", ["Lisboa", "Porto"])]
TAGS = ["gold", "north", "south", "touring", "repeat", "festival", "corporate", "theatre", "wedding", "museum"]
INDUSTRIES = ["events", "theatre", "festivals", "corporate", "museums", "broadcast", "sports", "education"]
GIVEN = ["Anna", "José", "Zoë", "Anaïs", "Søren", "Łukasz", "Mia", "Noah", "Lena", "Luca", "Emma", "Jan", "Sofía",
         "Chloé", "Björn", "Ines", "Mateo", "Hannah", "Pieter", "Marta", "Yusuf", "Fatima", "Olivier", "Greta"]
FAMILY = ["de Vries", "Müller", "García", "Dvořák", "Jansen", "Rossi", "Dubois", "Nowak", "Silva", "Andersson",
          "Smith", "Bakker", "Schmidt", "Fernández", "Lefèvre", "Kowalski", "O'Brien", "van Dijk", "Novák", "Hansen"]
TITLES = ["Production Manager", "Event Director", "Head of Marketing", "Office Manager", "Technical Director",
          "Booker", "Venue Manager", "CFO", "Stage Manager", "Account Manager", None]
# (value, weight): the tiers, statuses and types of a typical tenant; vip is the segment benchmark's criteria
TIERS = [("standard", 62), ("preferred", 25), ("vip", 10), ("custom", 3)]
STATUSES = [("active", 55), ("lead", 18), ("trial", 7), ("inactive", 14), ("archived", 6)]
TYPES = [("company", 70), ("individual", 15), ("venue", 15)]
HISTORY = timedelta(days=730)
RECENT = timedelta(days=30)


def _pick(rnd: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rnd.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in fold(text)).strip("-")


@dataclass
class TenantPlan:
    """What one bench tenant holds: how many clients and contacts, and where the rare words are planted."""

    tenant_id: str
    clients: int
    contacts: int
    seed: int = 16
    now: datetime = field(default_factory=lambda: datetime.now().astimezone())

    def rare_clients(self) -> set[int]:
        """The client numbers (0..clients-1) whose name holds RARE_CLIENT_WORD: spread over the tenant."""
        return {(k * self.clients) // RARE_COUNT + 1 for k in range(RARE_COUNT)}

    def rare_contacts(self) -> set[int]:
        return {(k * self.contacts) // RARE_COUNT + 1 for k in range(RARE_COUNT)}


def client_data(plan: TenantPlan, n: int, rnd: random.Random) -> dict[str, Any]:
    """The create fields of client n, as a validated POST /v1/clients body would give them."""
    name = f"{rnd.choice(FIRST)} {rnd.choice(SECOND)} {rnd.choice(THIRD)}".strip()
    if n in plan.rare_clients():
        name = f"{rnd.choice(['Théâtre', 'Studio', 'Halle'])} {RARE_CLIENT_WORD} {rnd.choice(SECOND)}"
    domain = f"{_slug(name)[:30].strip('-')}-{n}.test"
    country, cities = rnd.choice(PLACES)
    tier = _pick(rnd, TIERS)
    data: dict[str, Any] = {
        "name": name, "type": _pick(rnd, TYPES), "email": f"info@{domain}", "phone": f"+31 20 {n:07d}",
        "website": f"https://{domain}", "industry": rnd.choice(INDUSTRIES), "pricing_tier": tier,
        "tags": rnd.sample(TAGS, rnd.choice([0, 1, 1, 2, 2, 3])),
        "addresses": [{"kind": "billing", "line1": f"Keizersgracht {n % 900 + 1}", "city": rnd.choice(cities),
                       "postal_code": f"{1000 + n % 9000}", "country": country}],
        "communication_preference": rnd.choice(["email", "email", "phone", "sms", "post"]),
        "status": _pick(rnd, [s for s in STATUSES if s[0] != "archived"]),
    }
    if rnd.random() < 0.6:
        data["vat_number"] = f"{country}{n:09d}B01"
    if rnd.random() < 0.5:
        data["credit_limit"] = Decimal(rnd.choice(["5000.00", "10000.00", "25000.00", "50000.00"]))
    if tier == "custom":
        data["price_multiplier"] = Decimal(rnd.choice(["0.80", "0.85", "1.10"]))
    return data


def derived(rnd: random.Random) -> dict[str, Any]:
    """Figures the stream's scoring keeps on a client with a history: health, risk, churn, revenue."""
    health = max(5, min(99, int(rnd.gauss(68, 16))))
    churn = round(max(0.0, min(0.99, (100 - health) / 100 + rnd.uniform(-0.15, 0.15))), 2)
    revenue = Decimal(rnd.choice([0, 0, 0, 1200, 4800, 9000, 15000, 42000, 120000])) + Decimal(rnd.randrange(100))
    return {"health_score": health, "risk_level": "high" if health < 40 else "medium" if health < 60 else "low",
            "churn_probability": churn, "lifetime_revenue": revenue.quantize(Decimal("0.01")),
            "lead_classification": rnd.choice(["cold", "cold", "warm", "hot"]),
            "projects_count": rnd.choice([0, 0, 1, 2, 5, 12])}


def contact_data(plan: TenantPlan, k: int, client: Client, rnd: random.Random) -> dict[str, Any]:
    given, family = rnd.choice(GIVEN), rnd.choice(FAMILY)
    if k in plan.rare_contacts():
        family = RARE_CONTACT_WORD
    domain = client.email.split("@", 1)[1] if client.email else "example.test"
    data: dict[str, Any] = {"full_name": f"{given} {family}", "email": f"{_slug(given)}.{_slug(family)}.{k}@{domain}",
                            "phone": f"+31 6 {k:08d}"}
    title = rnd.choice(TITLES)
    if title:
        data["job_title"] = title
    return data


def planned(plan: TenantPlan, n: int) -> tuple[random.Random, datetime, dict[str, Any], dict[str, Any]]:
    """Client n's random source, creation time, create fields and the figures scoring keeps on it."""
    rnd = random.Random(plan.seed * 1_000_003 + n)
    age = RECENT * rnd.random() if rnd.random() < 0.05 else HISTORY * rnd.random()
    data = client_data(plan, n, rnd)
    return rnd, plan.now - age, data, derived(rnd)


def build(plan: TenantPlan, settings: ClientSettings, start: int, stop: int, taken: set[str]
          ) -> tuple[list[Client], list[Contact]]:
    """Clients start..stop-1 of the tenant with their contacts (about contacts/clients a client; the first contact
    of a client is its primary, on the client's summary as adding it makes it), built by the domain's
    constructors. `taken`: the numbers drawn so far (a repeat is drawn again, as the create path does)."""
    clients: list[Client] = []
    contacts: list[Contact] = []
    share = plan.contacts / plan.clients if plan.clients else 0
    for n in range(start, stop):
        rnd, at, data, figures = planned(plan, n)
        client = new_client(data, tenant_id=plan.tenant_id, client_id=str(ULID.from_datetime(at)),
                            settings=settings, custom_fields=[], actor=ACTOR, now=at)
        while client.client_number in taken:
            client = client.model_copy(update={"client_number": generate_number("CLT", at)})
        taken.add(client.client_number)
        client = client.model_copy(update={**figures, "rev": 1})  # as create answers it: its first revision
        # Contact k belongs to client floor(k / share): the first contacts' clients get one each, a few two.
        first_k, last_k = int(n * share), int((n + 1) * share)
        for k in range(first_k, last_k):
            at_k = at + timedelta(minutes=5 + 7 * (k - first_k))
            contact = new_contact(contact_data(plan, k, client, rnd), tenant_id=plan.tenant_id,
                                  contact_id=str(ULID.from_datetime(at_k)), client_id=client.id, now=at_k,
                                  first_of_client=client.primary_contact is None)
            while contact.contact_number in taken:
                contact = contact.model_copy(update={"contact_number": generate_number("CON", at_k)})
            taken.add(contact.contact_number)
            contacts.append(contact.model_copy(update={"version": 1, "updated_by": ACTOR}))  # as stored
            if contact.is_primary:  # add_contact writes the summary on the client: a versioned client change
                client = client.model_copy(update={
                    "primary_contact": PrimaryContact(**contact.summary()), "updated_at": at_k,
                    "updated_by": ACTOR, "version": client.version + 1, "rev": client.rev + 1})
        if rnd.random() < dict(STATUSES)["archived"] / 100:  # archived later, through the archive use case
            client = archive(client, client.updated_at + (plan.now - client.updated_at) * rnd.random())
            client = client.model_copy(update={"version": client.version + 1, "rev": client.rev + 1,
                                               "updated_by": ACTOR})
        clients.append(client)
    return clients, contacts


def _summed(item: Any) -> tuple[str, str] | None:
    """The key of an item that several clients' creates share (a counter shard, a lookup key): None for others."""
    from chalicelib.tables.items import ClientKeyItem, DayCount, FacetCount

    return (item.pk, item.sk) if isinstance(item, ClientKeyItem | DayCount | FacetCount) else None


def _merge(into: dict[tuple[str, str], Any], item: Any) -> None:
    from chalicelib.tables.items import ClientKeyItem

    key = (item.pk, item.sk)
    held = into.get(key)
    if held is None:
        into[key] = item
    elif isinstance(item, ClientKeyItem):
        held.client_ids = set(held.client_ids) | set(item.client_ids)
    else:
        held.n = int(held.n) + int(item.n)


def tenant_items(plan: TenantPlan, chunk: int = 500) -> Iterator[dict[str, Any]]:
    """The serialised items of the whole tenant, chunk after chunk of clients: ClientRepository.load_items and
    ContactRepository.load_items of each chunk, with the items clients share (counters, lookup keys) summed over
    the tenant and yielded last."""
    from chalicelib.tables.clients import ClientRepository
    from chalicelib.tables.contacts import ContactRepository
    from chalicelib.tables.settings import SettingsRepository

    settings = SettingsRepository(plan.tenant_id).get("client")
    rules = FacetRules.of(settings, plan.now)  # as the daily prune leaves them: `new` = the last new_client_days
    clients_repo, contacts_repo = ClientRepository(plan.tenant_id, ACTOR), ContactRepository(plan.tenant_id, ACTOR)
    shared: dict[tuple[str, str], Any] = {}
    taken: set[str] = set()
    for start in range(0, plan.clients, chunk):
        clients, contacts = build(plan, settings, start, min(plan.clients, start + chunk), taken)
        for item in [*clients_repo.load_items(clients, rules), *contacts_repo.load_items(contacts)]:
            if _summed(item) is None:
                yield item.serialize()
            else:
                _merge(shared, item)
    for item in shared.values():
        yield item.serialize()


@dataclass
class Loaded:
    items: int = 0
    calls: int = 0
    retried: int = 0  # unprocessed items sent again
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


def _batches(items: Iterable[dict[str, Any]], size: int = 25) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class BatchWriter:
    """BatchWriteItem, 25 puts a call, from a few threads (one boto3 client each); unprocessed items are sent
    again after a short, growing wait."""

    def __init__(self, endpoint: str, table: str, threads: int = 4, region: str = "eu-west-1"):
        self.endpoint, self.table, self.threads, self.region = endpoint, table, threads, region
        self._local = threading.local()
        self._lock = threading.Lock()

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.session.Session().client(
                "dynamodb", endpoint_url=self.endpoint, region_name=self.region, aws_access_key_id="local",
                aws_secret_access_key="local",
                config=Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=4))
            self._local.client = client
        return client

    def _send(self, batch: list[dict[str, Any]], out: Loaded) -> None:
        pending = [{"PutRequest": {"Item": item}} for item in batch]
        for attempt in range(30):
            answer = self._client().batch_write_item(RequestItems={self.table: pending})
            with self._lock:
                out.calls += 1
            pending = answer.get("UnprocessedItems", {}).get(self.table, [])
            if not pending:
                return
            with self._lock:
                out.retried += len(pending)
            time.sleep(min(1.0, 0.02 * 2 ** attempt))
        raise RuntimeError(f"{len(pending)} items stayed unprocessed")

    def write(self, items: Iterable[dict[str, Any]]) -> Loaded:
        out = Loaded()
        start = time.perf_counter()
        in_flight: set[Future[None]] = set()
        with ThreadPoolExecutor(self.threads) as pool:
            for batch in _batches(items):
                out.items += len(batch)
                if out.items % 100_000 < len(batch):  # a long load shows that it moves
                    seconds = time.perf_counter() - start
                    print(f"  {out.items:,} items in {seconds:.0f} s ({out.items / seconds:,.0f}/s)", flush=True)
                in_flight.add(pool.submit(self._send, batch, out))
                if len(in_flight) >= self.threads * 4:
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    for f in done:
                        f.result()
            for f in in_flight:
                f.result()
        out.seconds = time.perf_counter() - start
        return out


def load(plan: TenantPlan, endpoint: str, table: str, threads: int = 8) -> Loaded:
    """Write the whole tenant; answers the items, calls and rate."""
    return BatchWriter(endpoint, table, threads).write(tenant_items(plan))
