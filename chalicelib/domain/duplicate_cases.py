"""Possible duplicate clients: the candidates of one client, the tenant's pairs page by page, pairs dismissed."""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.clients import Client, lookup_keys
from chalicelib.domain.duplicates import REASONS, Candidate, candidates, own_domains, pair
from chalicelib.domain.errors import Conflict, ValidationFailed
from chalicelib.domain.ports import Stores

MAX_CANDIDATES = 50   # of one client, the most likely first
MAX_HOLDERS = 20      # of one key, paired with each other on the tenant's list (a key held by more is listed so)


@dataclass(frozen=True)
class Pair:
    """Two live clients that may be one, and why."""

    clients: tuple[Client, Client]
    reasons: tuple[str, ...]


def sync_key(stores: Stores, subject: str) -> int:
    """The stream's effect of a lookup key's holders changing: the duplicates list follows (`name=value`)."""
    name, _, value = subject.partition("=")
    return stores.duplicates.sync(name, value)


def _ignored_domains(stores: Stores) -> frozenset[str]:
    settings = stores.settings.get("client")
    return own_domains([settings.sending_address, settings.inbound_address])


def client_duplicates(stores: Stores, client_id: str) -> list[tuple[Client, Candidate]]:
    """The live clients that may be this one (same email, VAT number, name and country, or email domain), the
    most reasons first, pairs dismissed left out. By key: the holders of the client's own lookup keys."""
    client = stores.clients.get(client_id)
    found = candidates(stores.clients.holders(sorted(lookup_keys(client))), client_id, _ignored_domains(stores))
    dismissed = stores.duplicates.dismissed(pair(client_id, c.client_id) for c in found)
    found = [c for c in found if pair(client_id, c.client_id) not in dismissed][:MAX_CANDIDATES]
    others = stores.clients.get_many([c.client_id for c in found])
    return [(others[c.client_id], c) for c in found if c.client_id in others and not others[c.client_id].is_archived]


FIELDS = {"same_email": "email", "same_vat_number": "vat_number", "same_name_and_country": "name",
          "same_email_domain": "email"}  # the field a reason is about, named in a 409's details


def refuse_duplicates(stores: Stores, client: Client) -> None:
    """409 `possible_duplicate` when live clients may be this new one, naming each and the reasons (a create
    with `allow_duplicate` does not ask). By key: the holders of the new client's lookup keys, one read."""
    found = candidates(stores.clients.holders(sorted(lookup_keys(client))), client.id, _ignored_domains(stores))
    others = stores.clients.get_many([c.client_id for c in found[:MAX_CANDIDATES]])
    details = [{"field": FIELDS[c.reasons[0]], "message": f"may be client {other.client_number} "
                f"({', '.join(c.reasons)})", "client_id": other.id, "client_number": other.client_number,
                "name": other.name, "reasons": list(c.reasons)}
               for c in found[:MAX_CANDIDATES] if (other := others.get(c.client_id)) is not None]
    if details:
        raise Conflict("possible_duplicate", f"{len(details)} existing client(s) may be this one; create it anyway "
                       "with ?allow_duplicate=true", details)


def refuse_duplicate_contact(stores: Stores, client_id: str, email: str | None) -> None:
    """409 `possible_duplicate` when live contacts of the tenant have this address already (of this client or
    another: `same_client` says which), naming each. By the contacts' email index, one Query."""
    found = stores.inbox.contacts_with_email(email) if email else []
    details = [{"field": "email", "message": f"contact {ref.contact_id} of client {ref.client_id} has this address",
                "client_id": ref.client_id, "contact_id": ref.contact_id, "reasons": ["same_email"],
                "same_client": ref.client_id == client_id} for ref in found[:MAX_CANDIDATES]]
    if details:
        raise Conflict("possible_duplicate", f"{len(details)} existing contact(s) have this email address; add it "
                       "anyway with ?allow_duplicate=true", details)


def list_duplicates(stores: Stores, limit: int, after: str | None) -> tuple[list[Pair], str | None]:
    """The tenant's possible duplicate pairs from a page of `limit` shared lookup keys (a pair sharing several of
    them is one entry with every reason), dismissed pairs left out; and where the next page starts."""
    shared, next_after = stores.duplicates.page(limit, after)
    ignored = _ignored_domains(stores)
    reasons: dict[tuple[str, str], set[str]] = {}
    for name, value, holders in shared:
        if name == "domain" and value in ignored:
            continue
        held = holders[:MAX_HOLDERS]
        for i, a in enumerate(held):
            for b in held[i + 1:]:
                reasons.setdefault(pair(a, b), set()).add(REASONS[name])
    dismissed = stores.duplicates.dismissed(reasons)
    clients = stores.clients.get_many(sorted({cid for p in reasons for cid in p}))
    pairs = [Pair((clients[a], clients[b]), tuple(sorted(why))) for (a, b), why in sorted(reasons.items())
             if (a, b) not in dismissed and a in clients and b in clients
             and not (clients[a].is_archived or clients[b].is_archived)]
    return pairs, next_after


def dismiss(stores: Stores, ids: list[str]) -> tuple[str, str]:
    """Two clients are not the same: never proposed as duplicates again (either order). Both must exist."""
    if len(ids) != 2 or ids[0] == ids[1]:
        raise ValidationFailed("two different client ids are dismissed as a pair",
                               [{"field": "ids", "message": "must name two different clients"}])
    for client_id in ids:
        stores.clients.get(client_id)  # NotFound for an id the tenant has no client of
    a, b = pair(ids[0], ids[1])
    stores.duplicates.dismiss(a, b)
    return a, b
