"""What `q` matches: text folded (case and accents), and the trigram terms of the search index that find it."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

GRAM = 3
# A record with more distinct trigrams than this is indexed under OVERFLOW alone (its writes must fit one
# transaction); every search reads that partition too, so such records are still found, exactly.
MAX_TERMS = 48
OVERFLOW = "*"
# Terms of a query probed for the rarest (a long query has many; a few spread over it find a rare one).
PROBED_TERMS = 6

_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Case and accents folded: `Théâtre` and `THEATRE` both fold to `theatre` (NFKD, marks dropped, casefold)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def search_text(parts: Iterable[str | None]) -> str:
    """The folded text a record's `q` is matched against: its searched fields, one per line."""
    return "\n".join(fold(p) for p in parts if p)


def grams(folded: str) -> set[str]:
    """The trigrams inside the words (letter and digit runs) of folded text: `acme-ren` -> acm, cme, ren."""
    return {word[i:i + GRAM] for word in _WORD.findall(folded) for i in range(len(word) - GRAM + 1)}


def index_terms(folded: str) -> set[str]:
    """The index partitions a record with this search text is entered in: its trigrams, or OVERFLOW alone."""
    terms = grams(folded)
    return {OVERFLOW} if len(terms) > MAX_TERMS else terms


def query_terms(q: str) -> list[str]:
    """The trigrams of a query worth probing, spread over it (empty: the query has no word of 3 characters, so
    no index term can find it and the list is walked instead). Any record whose text holds `q` holds every one
    of them, so each is a superset of the matches."""
    terms = sorted(grams(fold(q)), key=fold(q).find)
    if len(terms) <= PROBED_TERMS:
        return terms
    step = (len(terms) - 1) / (PROBED_TERMS - 1)
    return list(dict.fromkeys(terms[round(i * step)] for i in range(PROBED_TERMS)))


def matches(folded_text: str | None, q: str) -> bool:
    """The exact check every candidate passes: `q` (folded) is a substring of the record's folded text."""
    return bool(folded_text) and fold(q) in (folded_text or "")
