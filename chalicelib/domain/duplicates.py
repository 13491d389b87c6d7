"""Possible duplicates: the keys a client is matched by (name and country, email domain) and why two match."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from chalicelib.domain.search import fold

# Mailbox providers: a shared domain there says nothing about two clients being one company.
FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "hotmail.de", "hotmail.fr",
    "live.com", "msn.com", "yahoo.com", "yahoo.co.uk", "yahoo.de", "yahoo.fr", "ymail.com", "icloud.com", "me.com",
    "mac.com", "aol.com", "gmx.de", "gmx.net", "gmx.at", "gmx.ch", "web.de", "t-online.de", "freenet.de",
    "proton.me", "protonmail.com", "pm.me", "mail.com", "zoho.com", "yandex.com", "yandex.ru", "orange.fr",
    "wanadoo.fr", "free.fr", "laposte.net", "libero.it", "virgilio.it", "btinternet.com", "qq.com", "163.com"})
# Legal forms and filler words left out of a name: "ACME Events GmbH" and "Acme Events" are the same company.
LEGAL_FORMS = frozenset({
    "gmbh", "mbh", "ag", "kg", "ug", "ohg", "gbr", "ev", "ltd", "limited", "llc", "llp", "lp", "inc", "incorporated",
    "corp", "corporation", "co", "company", "plc", "sa", "sas", "sarl", "sl", "srl", "spa", "bv", "nv", "oy", "ab",
    "as", "aps", "asa", "kk", "pty", "pte", "the", "and", "und", "et"})
# Why two clients may be one, by the lookup key they share (email and VAT number are exact, the others likely).
REASONS = {"email": "same_email", "vat": "same_vat_number", "name": "same_name_and_country",
           "domain": "same_email_domain"}
EXACT = frozenset({"email", "vat"})  # an import skips a row holding one of these


def normalise_name(name: str | None) -> str:
    """Case, accents, punctuation and legal forms left out: `Société Générale S.A.` -> `societe generale`."""
    words = re.findall(r"[a-z0-9]+", fold(name or "").replace("&", " and ").replace(".", ""))  # S.A. -> sa
    kept = [w for w in words if w not in LEGAL_FORMS]
    return " ".join(kept or words)


def name_key(name: str | None, country: str | None) -> str | None:
    """`<normalised name>|<country>` (an empty country when none is known), None for a name with no letters."""
    normalised = normalise_name(name)
    return f"{normalised}|{(country or '').upper()}" if normalised else None


def email_domain(email: str | None) -> str | None:
    """The domain of an address, lower case; None for a free-mail one (or no address)."""
    local, at, domain = (email or "").rpartition("@")
    domain = domain.strip().casefold()
    return domain if local and at and domain and domain not in FREE_MAIL_DOMAINS else None


def own_domains(addresses: Iterable[str | None]) -> frozenset[str]:
    """The tenant's own mail domains (its sending and inbound addresses): every client it writes to shares them."""
    return frozenset(a.rpartition("@")[2].casefold() for a in addresses if a and "@" in a)


@dataclass(frozen=True)
class Candidate:
    """Another client that may be the same one, and the reasons (REASONS' values) it matches."""

    client_id: str
    reasons: tuple[str, ...]


def candidates(holders: dict[tuple[str, str], list[str]], exclude: str | None,
               ignored_domains: frozenset[str] = frozenset()) -> list[Candidate]:
    """The clients holding any of the keys (by key), with the reasons they share, `exclude` left out; a domain
    key of the tenant's own domains says nothing and is ignored. Ordered by the most reasons, then id."""
    reasons: dict[str, set[str]] = {}
    for (name, value), ids in holders.items():
        if name == "domain" and value in ignored_domains:
            continue
        for client_id in ids:
            if client_id != exclude:
                reasons.setdefault(client_id, set()).add(REASONS[name])
    ordered = sorted(reasons.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [Candidate(cid, tuple(sorted(why))) for cid, why in ordered]


def pair(a: str, b: str) -> tuple[str, str]:
    """A pair of ids in one order, so (a, b) and (b, a) are one pair."""
    return (a, b) if a <= b else (b, a)
