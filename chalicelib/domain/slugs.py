"""Slugs of categories and segments: generated from the name, unique in the tenant."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable


class SlugTaken(Exception):
    """Raised by a store when the slug chosen was reserved meanwhile."""


def slugify(text: str) -> str:
    """ASCII, lowercase, words joined by hyphens: "Events & Corporate" -> "events-corporate"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:80] or "item"


def slug_candidates(name: str) -> Iterable[str]:
    """`name`, `name-2`, `name-3`, ... : the first one free becomes the slug."""
    base = slugify(name)
    yield base
    n = 2
    while True:
        yield f"{base}-{n}"
        n += 1
