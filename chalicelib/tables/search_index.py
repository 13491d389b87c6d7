"""The search index: a record under each trigram of its search text, written with it; a search reads the rarest."""
from __future__ import annotations

from pynamodb.transactions import TransactWrite

from chalicelib.domain import search
from chalicelib.tables import keys
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.items import SearchEntry

PROBE = 20  # a term's records read first, to find the rarest term cheaply
CANDIDATES = 500  # the most records a search checks and sorts in memory; a query whose terms all hold more walks


def entries(tenant_id: str, what: str, record: str, text: str | None) -> list[SearchEntry]:
    """The index entries of one record (`what`: client or contact) with this folded search text (None: none)."""
    return [SearchEntry(keys.search_pk(tenant_id, what, term), record)
            for term in (search.index_terms(text) if text is not None else ())]


def write(tx: TransactWrite, tenant_id: str, what: str, record: str, old: str | None, new: str | None) -> None:
    """Move a record's entries from its old search text to its new one (None: not indexed), in `tx`."""
    before = search.index_terms(old) if old is not None else set()
    after = search.index_terms(new) if new is not None else set()
    for term in before - after:
        tx.delete(SearchEntry(keys.search_pk(tenant_id, what, term), record))
    for term in after - before:
        tx.save(SearchEntry(keys.search_pk(tenant_id, what, term), record))


def candidates(tenant_id: str, what: str, q: str) -> set[str] | None:
    """Every record whose search text may hold `q`: the smallest set among the query's terms (intersected when
    several are small), plus the overflow partition; each must still be checked. None when no term is rare
    enough to check its records in memory, or `q` has no term: the caller walks its list, within a budget."""
    terms = search.query_terms(q)
    if not terms:
        return None
    overflow, complete = _records(tenant_id, what, search.OVERFLOW, CANDIDATES)
    if not complete:
        return None
    best: set[str] | None = None
    for depth in (PROBE, CANDIDATES):  # a shallow probe of every term first, then deeper ones
        for term in terms:
            found, complete = _records(tenant_id, what, term, depth)
            if complete:
                best = found if best is None else best & found
                if not best:
                    return overflow
        if best is not None:
            return best | overflow
    return None


def _records(tenant_id: str, what: str, term: str, limit: int) -> tuple[set[str], bool]:
    """Up to `limit` records under one term, and whether that is all of them."""
    found: set[str] = set()
    with storage_errors():
        for entry in SearchEntry.query(keys.search_pk(tenant_id, what, term), page_size=limit + 1, limit=limit + 1):
            found.add(entry.sk)
    return found, len(found) <= limit
