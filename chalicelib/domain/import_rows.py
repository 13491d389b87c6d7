"""One run of an import over rows: each checked like POST /v1/clients, duplicates found, the rest created in
batches, while the next rows are checked (the database works while Python validates)."""
from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain import client_cases
from chalicelib.domain.category_cases import Tree, check_assignable, tree_of
from chalicelib.domain.client_import import ParsedRow, field_name
from chalicelib.domain.clients import LOOKUP_NAMES, Client, FacetRules, generate_number, lookup_keys
from chalicelib.domain.duplicates import EXACT, REASONS, own_domains
from chalicelib.domain.duplicates import candidates as likely_candidates
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.ports import Stores
from chalicelib.domain.settings import ClientSettings, CustomFieldDef, LeadScoreThresholds
from chalicelib.domain.values import utcnow

BLOCK_ROWS = 250  # rows checked while the database looks up (and writes) the block before
LOOKUP_FIELDS = {name: f for f, name in LOOKUP_NAMES.items()}  # "vat" -> "vat_number"


# A row's create body -> (the fields POST /v1/clients would take, or None; its problems [{field, message}]).
Validator = Callable[[dict[str, Any]], tuple[dict[str, Any] | None, list[dict]]]


@dataclass
class Rules:
    """What every row is checked against, read once per import (once per job step)."""

    tenant_id: str
    actor: str | None
    settings: ClientSettings
    thresholds: LeadScoreThresholds
    defs: list[CustomFieldDef]
    tree: Tree
    validate: Validator

    @classmethod
    def read(cls, stores: Stores, validate: Validator, actor: str | None,
             defs: list[CustomFieldDef] | None = None) -> Rules:
        return cls(stores.tenant_id, actor, stores.settings.get("client"), stores.settings.get("lead-score-thresholds"),
                   stores.settings.custom_fields() if defs is None else defs, tree_of(stores), validate)


@dataclass
class Outcome:
    """What a run over some rows did (or, in a dry run, would do)."""

    created: int = 0
    errors: list[dict] = field(default_factory=list)      # [{row, field, message}]
    duplicates: list[dict] = field(default_factory=list)  # [{row, field, value, client_id, reason}]
    possible: list[dict] = field(default_factory=list)    # created; may be: [{row, client_ids, earlier_row, reasons}]

    @property
    def skipped(self) -> int:
        return len(self.duplicates)


# --- one run over rows ---------------------------------------------------------------------------------------

def _problems(row: ParsedRow, details: list[dict]) -> list[dict]:
    return [{"row": row.line, "field": field_name(row.data, d["field"]) if d.get("field") else None,
             "message": d["message"]} for d in details]


def _client_of(row: ParsedRow, rules: Rules, import_id: str | None,
               dry_run: bool = False) -> tuple[Client | None, list[dict]]:
    """The client a row creates, by the rules of POST /v1/clients, or the row's errors."""
    fields, details = rules.validate(row.data)
    if fields is None:
        return None, _problems(row, details)
    try:
        if fields.get("category_ids"):
            check_assignable(rules.tree, fields["category_ids"])
        client = client_cases.build_client(fields, tenant_id=rules.tenant_id, actor=rules.actor,
                                           client_settings=rules.settings, thresholds=rules.thresholds,
                                           defs=rules.defs, at=utcnow(), scored=not dry_run)
    except ValidationFailed as exc:
        return None, _problems(row, exc.details or [{"field": None, "message": exc.message}])
    return client.model_copy(update={"import_id": import_id}), []


def _duplicate(row: ParsedRow, key: tuple[str, str] | None, client_id: str | None, reason: str,
               earlier_row: int | None = None) -> dict:
    out = {"row": row.line, "field": LOOKUP_FIELDS[key[0]] if key else None, "value": key[1] if key else None,
           "client_id": client_id, "reason": reason}
    if earlier_row is not None:
        out["earlier_row"] = earlier_row
    return out


CREATE, CREATED = "create", "created"


@dataclass
class _Known:
    """What the table says about some rows: holders of their lookup keys, fingerprints already imported (rows
    without keys), and which of those clients this import created (client id -> line)."""

    held: dict[tuple[str, str], list[str]]
    imported: dict[str, tuple[str, str, int]]
    ours: dict[str, int]
    likely: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # holders of the name and domain keys

    @classmethod
    def read(cls, stores: Stores, import_id: str | None, rows: list[tuple[ParsedRow, list[tuple[str, str]]]],
             likely: list[tuple[str, str]] | None = None) -> _Known:
        held = stores.clients.holders([k for _, keys in rows for k in keys] + (likely or [])) if rows else {}
        keyless = [row.fingerprint for row, keys in rows if not keys]
        imported = stores.imports.imported(keyless) if keyless else {}
        holders = [cid for key, ids in held.items() if key[0] in EXACT for cid in ids]
        ours = stores.imports.members_among(import_id, holders) if import_id and holders else {}
        return cls({k: v for k, v in held.items() if k[0] in EXACT}, imported, ours,
                   {k: v for k, v in held.items() if k[0] not in EXACT})


def _judge(row: ParsedRow, keys: list[tuple[str, str]], known: _Known, import_id: str | None,
           seen: dict[tuple[str, str], int], seen_rows: dict[str, int]) -> str | dict:
    """CREATE, CREATED (this import created the row in a run cut off before it was saved) or the duplicate."""
    if not keys and row.fingerprint in known.imported:
        owner, owner_import, line = known.imported[row.fingerprint]
        if owner_import != import_id:
            return _duplicate(row, None, owner, "already_imported")
        return CREATED if line == row.line else _duplicate(row, None, owner, "earlier_row", line)
    for key in keys:
        for holder in known.held.get(key, []):
            ours = known.ours.get(holder)
            if ours is not None:
                return CREATED if ours == row.line else _duplicate(row, key, holder, "earlier_row", ours)
    tenant = next((k for k in keys if k in known.held), None)
    if tenant:
        return _duplicate(row, tenant, known.held[tenant][0], "exists")
    earlier = next((k for k in keys if k in seen), None)
    if earlier:
        return _duplicate(row, earlier, None, "earlier_row", seen[earlier])
    if row.fingerprint in seen_rows:
        return _duplicate(row, None, None, "earlier_row", seen_rows[row.fingerprint])
    return CREATE


Candidate = tuple[ParsedRow, Client, list[tuple[str, str]]]  # a valid row, its client, its lookup keys


def run_rows(stores: Stores, rules: Rules, rows: list[ParsedRow], *, import_id: str | None,
             dry_run: bool) -> Outcome:
    """Check rows, skip duplicates (a live client with the email or VAT number, a row without either created by
    an import before, an earlier row) and create the rest, each atomically with its member item of the import
    (and, without email and VAT, its row fingerprint). Rows this same import created in a run that was cut off
    count as created again, not as duplicates, so a step run twice reports what one run would.

    Rows go through in blocks: while one block is checked, the lookups of the one before run, and the clients
    of the one before that are written (the database works while Python validates)."""
    out = Outcome()
    seen: dict[tuple[str, str], int] = {}
    seen_rows: dict[str, int] = {}
    seen_likely: dict[tuple[str, str], int] = {}  # a name or domain key -> the first row holding it
    ignored = own_domains([rules.settings.sending_address, rules.settings.inbound_address])
    drawn: set[str] = set()
    with ThreadPoolExecutor(max_workers=1) as readers, ThreadPoolExecutor(max_workers=1) as writers:
        pending: list[tuple[list[Candidate], Future]] = []
        writes: list[Future] = []

        def judge_oldest() -> None:  # its lookups ran while the next block was checked
            candidates, lookups = pending.pop(0)
            creating = _judged(candidates, lookups.result(), import_id, seen, seen_rows, out)
            _report_possible(creating, lookups.result(), seen_likely, ignored, out)
            failed = next((w.exception() for w in writes if w.done() and w.exception()), None)
            if failed is not None:  # stop at the first failed write; what was written stays consistent
                raise failed
            if creating and not dry_run:
                writes.append(_background(writers, _create, stores, rules, import_id, creating))
            else:
                out.created += len(creating)

        for start in range(0, len(rows), BLOCK_ROWS):
            candidates = _checked(rows[start:start + BLOCK_ROWS], rules, import_id, dry_run, out, drawn)
            likely = sorted({k for _, client, _ in candidates for k in _likely_keys(client)})
            pending.append((candidates, _background(readers, _Known.read, stores, import_id,
                                                    [(row, keys) for row, _, keys in candidates], likely)))
            if len(pending) > 1:
                judge_oldest()
        while pending:
            judge_oldest()
        for write in writes:
            _merge(out, write.result())
    return _sorted(out)


def _background(pool: ThreadPoolExecutor, fn: Callable, *args: Any) -> Future:
    """Run in `pool` with this context (the request's database budget, the retry deadline)."""
    return pool.submit(contextvars.copy_context().run, fn, *args)


def _checked(block: list[ParsedRow], rules: Rules, import_id: str | None, dry_run: bool, out: Outcome,
             drawn: set[str]) -> list[Candidate]:
    """The valid rows of a block with their clients; errors are counted on `out`. Client numbers repeat (65,536
    a second), and a repeat would fail a whole transaction: one import draws each number once."""
    candidates = []
    for row in block:
        if row.errors:
            out.errors.extend(e.public() for e in row.errors)
            continue
        client, problems = _client_of(row, rules, import_id, dry_run)
        if client is None:
            out.errors.extend(problems)
            continue
        while client.client_number in drawn:
            client = client.model_copy(update={"client_number": generate_number("CLT", client.created_at)})
        drawn.add(client.client_number)
        candidates.append((row, client, sorted(k for k in lookup_keys(client) if k[0] in EXACT)))  # exact keys only
    return candidates


def _judged(candidates: list[Candidate], known: _Known, import_id: str | None, seen: dict[tuple[str, str], int],
            seen_rows: dict[str, int], out: Outcome) -> list[Candidate]:
    """The candidates to create; duplicates and rows created before by this import are counted on `out`."""
    creating = []
    for row, client, keys in candidates:
        verdict = _judge(row, keys, known, import_id, seen, seen_rows)
        if isinstance(verdict, dict):
            out.duplicates.append(verdict)
            continue
        seen.update((k, row.line) for k in keys)
        seen_rows[row.fingerprint] = row.line
        if verdict == CREATED:
            out.created += 1
        else:
            creating.append((row, client, keys))
    return creating


def _likely_keys(client: Client) -> list[tuple[str, str]]:
    return [k for k in lookup_keys(client) if k[0] not in EXACT]


def _report_possible(creating: list[Candidate], known: _Known, seen: dict[tuple[str, str], int],
                     ignored: frozenset[str], out: Outcome) -> None:
    """Rows created although a live client (or an earlier row) may be the same (name and country, email
    domain): listed with the reasons, as POST /v1/clients would have answered 409 `possible_duplicate`."""
    for row, client, _ in creating:
        keys = _likely_keys(client)
        holders = {k: known.likely.get(k, []) for k in keys}
        found = likely_candidates(holders, None, ignored)
        earlier = next((seen[k] for k in keys if k in seen and not (k[0] == "domain" and k[1] in ignored)), None)
        if found or earlier is not None:
            reasons = sorted({r for c in found for r in c.reasons} |
                             {REASONS[k[0]] for k in keys if k in seen and earlier is not None})
            out.possible.append({"row": row.line, "client_ids": [c.client_id for c in found][:10],
                                 "earlier_row": earlier, "reasons": reasons})
        for key in keys:
            seen.setdefault(key, row.line)


def _create(stores: Stores, rules: Rules, import_id: str, creating: list[Candidate]) -> Outcome:
    out = Outcome()
    by_id = {client.id: (row, keys) for row, client, keys in creating}
    marks = stores.imports.marks(import_id, {cid: (None if keys else row.fingerprint, row.line)
                                            for cid, (row, keys) in by_id.items()})
    made = stores.clients.create_many([client for _, client, _ in creating],
                                      FacetRules.of(rules.settings, utcnow()), marks, unique_keys=True)
    out.created += len(made.clients)
    if made.refused:  # a concurrent run (or request) wrote the row or took its email or VAT number first
        refused = [by_id[client.id] for client in made.refused]
        again = _Known.read(stores, import_id, refused)
        for row, keys in refused:
            verdict = _judge(row, keys, again, import_id, {}, {})
            if verdict == CREATED:
                out.created += 1
            elif isinstance(verdict, dict):
                out.duplicates.append(verdict)
            else:  # what refused it is gone again (an archive meanwhile): nothing was written for the row
                out.errors.append({"row": row.line, "field": None,
                                   "message": "the row changed meanwhile by another write; import it again"})
    return out


def _merge(out: Outcome, more: Outcome) -> None:
    out.created += more.created
    out.errors.extend(more.errors)
    out.duplicates.extend(more.duplicates)
    out.possible.extend(more.possible)


def _sorted(out: Outcome) -> Outcome:
    out.errors.sort(key=lambda e: e["row"])
    out.duplicates.sort(key=lambda d: d["row"])
    out.possible.sort(key=lambda d: d["row"])
    return out
