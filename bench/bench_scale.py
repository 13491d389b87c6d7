"""Issue 16's figures: each route on a small and a big tenant and next to its raw calls, alternated in one run."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.calls import Tally
from bench.common import Bench, run_jobs
from bench.loader import RARE_CLIENT_WORD, RARE_CONTACT_WORD, TenantPlan, load

ROOT = Path(__file__).resolve().parents[1]
SMALL_CLIENTS = 1_000
CONTACT_SHARE = 10  # one contact for every 10 clients: 100 beside 1,000, 10,000 beside 100,000
REPEATS = int(os.environ.get("BENCH_REPEATS", "9"))
STREAM_RECORDS = 100
VIP = {"match": "all", "conditions": [{"field": "pricing_tier", "operator": "equals", "value": "vip"}]}


@dataclass
class Measured:
    """One thing timed REPEATS times: its p50 in ms and the DynamoDB calls of one run."""

    ms: float
    tally: Tally

    def as_json(self) -> dict[str, Any]:
        return {"p50_ms": round(self.ms, 2), **self.tally.as_json()}


@dataclass
class Row:
    """A figure of the table: the two sides, their ratio, the issue's target and whether it is met."""

    figure: str
    left: str
    right: str
    ratio: float
    target: str
    met: bool
    detail: dict[str, Any] = field(default_factory=dict)


def _timed(b: Bench, run: Callable[[], Any]) -> tuple[float, Tally, Any]:
    with b.counter.measuring() as tally:
        start = time.perf_counter()
        result = run()
        ms = (time.perf_counter() - start) * 1000
    return ms, tally, result


def side_by_side(b: Bench, runs: dict[str, Callable[[], Any]], repeats: int = REPEATS) -> dict[str, Measured]:
    """Each run `repeats` times, alternated (a, b, a, b...) so a noisy machine slows both alike; one warm-up each."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    tallies: dict[str, Tally] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            ms, tally, _ = _timed(b, run)
            times[name].append(ms)
            tallies[name] = tally
    return {name: Measured(statistics.median(times[name]), tallies[name]) for name in runs}


def _get(b: Bench, path: str) -> Callable[[], dict]:
    def call() -> dict:
        status, answer = b.invoke("GET", path)
        if status != 200:
            raise AssertionError(f"GET {path} answered {status}: {str(answer)[:300]}")
        return answer
    return call


def _ratio_row(figure: str, target: float, measured: dict[str, Measured], left: str, right: str,
               target_text: str, extra: str = "") -> Row:
    a, z = measured[left], measured[right]
    ratio = a.ms / z.ms if z.ms else float("inf")
    return Row(figure, f"{a.ms:.1f} ms; {a.tally.summary()}", f"{z.ms:.1f} ms; {z.tally.summary()}", ratio,
               target_text + extra, ratio <= target, {left: a.as_json(), right: z.as_json()})


# --- the figures ---------------------------------------------------------------------------------

def search_rows(big: Bench, small: Bench, sizes: tuple[int, int]) -> list[Row]:
    clients = side_by_side(big, {"big": _get(big, f"/v1/clients?q={RARE_CLIENT_WORD.lower()}"),
                                 "small": _get(small, f"/v1/clients?q={RARE_CLIENT_WORD.lower()}")})
    contacts = side_by_side(big, {"big": _get(big, f"/v1/contacts?q={RARE_CONTACT_WORD.lower()}"),
                                  "small": _get(small, f"/v1/contacts?q={RARE_CONTACT_WORD.lower()}")})
    found = len(_get(big, f"/v1/clients?q={RARE_CLIENT_WORD.lower()}")()["items"])
    return [
        _ratio_row(f"`GET /v1/clients?q=<rare term>`, {sizes[0]:,} ÷ {sizes[1]:,} clients", 1.25, clients, "big",
                   "small", "≤ ×1.25, reads proportional to the matches", f" ({found} matches)"),
        _ratio_row(f"`GET /v1/contacts?q=<rare term>`, {sizes[0] // CONTACT_SHARE:,} ÷ "
                   f"{sizes[1] // CONTACT_SHARE:,} contacts", 1.25, contacts, "big", "small", "≤ ×1.25"),
    ]


def chips_row(big: Bench, small: Bench, sizes: tuple[int, int]) -> Row:
    chips = side_by_side(big, {"big": _get(big, "/v1/clients/chips"), "small": _get(small, "/v1/clients/chips")})
    return _ratio_row(f"`GET /v1/clients/chips`, {sizes[0]:,} ÷ {sizes[1]:,}", 1.25, chips, "big", "small",
                      "≤ ×1.25, constant reads")


def _refresh(b: Bench) -> tuple[float, float, Tally, Tally, dict]:
    """A dynamic segment on tier = vip: the create's answer time, then its refresh job run to the end."""
    body = {"name": f"VIPs {time.perf_counter_ns()}", "type": "dynamic", "refresh_frequency": "realtime",
            "criteria": VIP}
    answer_ms, answer_tally, (status, segment) = _timed(b, lambda: b.invoke("POST", "/v1/segments", body))
    if status != 201:
        raise AssertionError(f"POST /v1/segments answered {status}: {str(segment)[:300]}")
    job_ms, job_tally, _ = _timed(b, run_jobs)
    done = _get(b, f"/v1/segments/{segment['id']}")()
    if done.get("refreshing"):
        raise AssertionError(f"the segment is still refreshing: {done.get('refresh')}")
    return answer_ms, job_ms, answer_tally, job_tally, done


def segment_rows(big: Bench, small: Bench, sizes: tuple[int, int]) -> list[Row]:
    """The refresh's reads per member found, big tenant ÷ small (proportional to the candidates: about 1), and the
    create's answer time on the big tenant."""
    runs = {name: _refresh(b) for name, b in (("small", small), ("big", big))}
    per_member = {}
    detail = {}
    for name, (answer_ms, job_ms, answer_tally, job_tally, segment) in runs.items():
        items = answer_tally.items + job_tally.items
        per_member[name] = items / max(1, segment["client_count"])
        detail[name] = {"answer_ms": round(answer_ms), "job_ms": round(job_ms), "members": segment["client_count"],
                        "items_per_member": round(per_member[name], 2), "answer": answer_tally.as_json(),
                        "job": job_tally.as_json()}
    ratio = per_member["big"] / per_member["small"]
    (b_answer, b_job, b_answer_tally, b_tally, b_seg), (s_answer, s_job, _, s_tally, s_seg) = runs["big"], runs["small"]
    return [
        Row(f"dynamic segment refresh (tier = vip), items read per member, {sizes[0]:,} ÷ {sizes[1]:,}",
            f"{per_member['big']:.2f} a member: job {b_job / 1000:.2f} s for {b_seg['client_count']:,} members; "
            f"{b_tally.summary()}",
            f"{per_member['small']:.2f} a member: job {s_job / 1000:.2f} s for {s_seg['client_count']:,} members; "
            f"{s_tally.summary()}", ratio, "reads proportional to the candidates the criteria select (≤ ×1.25)",
            ratio <= 1.25, detail),
        Row(f"`POST /v1/segments` answer (`refreshing: true`), {sizes[0]:,} clients",
            f"{b_answer:.0f} ms; {b_answer_tally.summary()}", f"{s_answer:.0f} ms at {sizes[1]:,}",
            b_answer / s_answer if s_answer else float("inf"), "< 1 s at any size", b_answer < 1000,
            {"big_ms": round(b_answer), "small_ms": round(s_answer)}),
    ]


def _raw_client(b: Bench) -> Any:
    import boto3

    return b.counter.hook(boto3.session.Session().client(
        "dynamodb", endpoint_url=b.endpoint, region_name="eu-west-1", aws_access_key_id="local",
        aws_secret_access_key="local"))


def page_rows(big: Bench, sizes: tuple[int, int]) -> list[Row]:
    """A list page of 25 and a client GET next to the raw calls of their access pattern: the Query the list makes
    (as the app made it, with Limit 25) and a BatchGetItem of its 25 clients; the GetItem the app makes."""
    from chalicelib.tables import keys

    raw = _raw_client(big)
    listed = _get(big, "/v1/clients?limit=25")()
    query = {**big.counter.last_params["Query"], "Limit": 25}
    tenant = "big"

    def raw_page() -> None:
        rows = raw.query(**query)["Items"]
        wanted = [{"pk": {"S": keys.client_pk(tenant, r["client_id"]["S"])}, "sk": {"S": keys.CLIENT_SK}}
                  for r in rows]
        raw.batch_get_item(RequestItems={big.table: {"Keys": wanted}})

    client_id = listed["items"][0]["id"]
    _get(big, f"/v1/clients/{client_id}")()
    get_item = big.counter.last_params["GetItem"]  # as the app reads a client: consistent
    measured = side_by_side(big, {"page": _get(big, "/v1/clients?limit=25"), "raw page": raw_page,
                                  "get": _get(big, f"/v1/clients/{client_id}"),
                                  "raw get": lambda: raw.get_item(**get_item)})
    page, floor = measured["page"].tally, measured["raw page"].tally
    row = _ratio_row(f"list page of 25 ÷ raw Query(25) + BatchGet(25), {sizes[0]:,} clients", 2.0, measured,
                     "page", "raw page", "≤ ×2, capacity ≤ 1.5 × floor")
    row.met = row.met and page.rcu <= 1.5 * floor.rcu
    row.detail["capacity_vs_floor"] = round(page.rcu / floor.rcu, 2) if floor.rcu else None
    return [row, _ratio_row("single client GET ÷ raw GetItem", 1.5, measured, "get", "raw get", "≤ ×1.5 (keep)")]


_IMPORT = "import time; t = time.perf_counter(); import {modules}; print((time.perf_counter() - t) * 1000)"
BARE = "boto3, chalice, pynamodb.models, pydantic"


def _import_ms(modules: str) -> float:
    done = subprocess.run([sys.executable, "-c", _IMPORT.format(modules=modules)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def import_row() -> Row:
    app_ms: list[float] = []
    bare_ms: list[float] = []
    _import_ms("app")  # compiles the .pyc files once
    for _ in range(REPEATS):
        app_ms.append(_import_ms("app"))
        bare_ms.append(_import_ms(BARE))
    a, z = statistics.median(app_ms), statistics.median(bare_ms)
    return Row("`import app` ÷ `import boto3, chalice, pynamodb.models, pydantic`", f"{a:.0f} ms", f"{z:.0f} ms",
               a / z, "≤ ×1.15", a / z <= 1.15, {"app_ms": round(a, 1), "bare_ms": round(z, 1)})


# A fresh interpreter: import the app, then the first request and warm ones through API Gateway's local stand-in.
_FIRST_REQUEST = """
import json, statistics, sys, time
path, token = sys.argv[1], sys.argv[2]
import app
from chalice.config import Config
from chalicelib.local.server import NexusLocalGateway
gateway = NexusLocalGateway(app.app, Config())
headers = {"authorization": "Bearer " + token, "host": "127.0.0.1"}
def once():
    start = time.perf_counter()
    answer = gateway.handle_request("GET", path, headers, b"")
    assert answer["statusCode"] == 200, answer
    return (time.perf_counter() - start) * 1000
first = once()
warm = [once() for _ in range(20)]
print(json.dumps({"first_ms": first, "warm_ms": statistics.median(warm)}))
"""


def first_request_row(b: Bench, client_id: str) -> Row:
    token = b.token
    firsts, warms = [], []
    for _ in range(max(3, REPEATS // 2)):
        done = subprocess.run([sys.executable, "-c", _FIRST_REQUEST, f"/v1/clients/{client_id}", token], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, env=os.environ.copy())
        if done.returncode != 0:
            raise AssertionError(done.stderr[-2000:])
        got = json.loads(done.stdout.strip().splitlines()[-1])
        firsts.append(got["first_ms"])
        warms.append(got["warm_ms"])
    f, w = statistics.median(firsts), statistics.median(warms)
    return Row("first request in a fresh process ÷ a warm one (`GET /v1/clients/{id}`)", f"{f:.0f} ms",
               f"{w:.1f} ms", f / w, "≤ ×2", f / w <= 2, {"first_ms": round(f, 1), "warm_ms": round(w, 2)})


def stream_record(n: int, old: dict, new: dict) -> dict:
    """A MODIFY record of the table stream as Lambda delivers it, from an item's two images."""
    return {"eventID": str(n), "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1", "eventSourceARN": "arn:aws:dynamodb:eu-west-1:0:table/t/stream/x",
            "dynamodb": {"Keys": {"pk": new["pk"], "sk": new["sk"]}, "NewImage": new, "OldImage": old,
                         "SequenceNumber": str(10_000 + n), "SizeBytes": 1, "StreamViewType": "NEW_AND_OLD_IMAGES",
                         "ApproximateCreationDateTime": 1}}


def stream_row(b: Bench, tenant: str, client_ids: list[str]) -> Row:
    """STREAM_RECORDS client updates (a tier change each, through the update use case) as one stream batch."""
    import app as app_module
    from chalicelib.domain import client_cases
    from chalicelib.tables import keys
    from chalicelib.tables.stores import Stores

    raw = _raw_client(b)
    ids = client_ids[:STREAM_RECORDS]

    def item(client_id: str) -> dict:
        key = {"pk": {"S": keys.client_pk(tenant, client_id)}, "sk": {"S": keys.CLIENT_SK}}
        return raw.get_item(TableName=b.table, Key=key)["Item"]

    olds = [item(i) for i in ids]
    stores = Stores(tenant, "bench-admin")
    for n, client_id in enumerate(ids):
        client_cases.update_client(stores, client_id, {"pricing_tier": "vip" if n % 2 else "preferred"})
    records = [stream_record(n, old, item(i)) for n, (old, i) in enumerate(zip(olds, ids, strict=True))]
    ms, tally, answer = _timed(b, lambda: app_module.on_table_stream({"Records": records}, None))
    if answer != {"batchItemFailures": []}:
        raise AssertionError(answer)
    per_record = tally.calls / len(records)
    return Row(f"stream handler, {len(records)} client-update records", f"{per_record:.2f} calls per record",
               f"{tally.summary()} in {ms:.0f} ms", per_record, "≤ 5 calls per record", per_record <= 5,
               {"records": len(records), "ms": round(ms), **tally.as_json()})


# --- the run -------------------------------------------------------------------------------------

def load_tenants(b: Bench, big_clients: int) -> dict[str, Any]:
    loaded = {}
    for tenant, clients in (("small", SMALL_CLIENTS), ("big", big_clients)):
        plan = TenantPlan(tenant, clients, clients // CONTACT_SHARE)
        done = b.measure(f"scale: load tenant `{tenant}`", clients, lambda plan=plan: load(plan, b.endpoint, b.table),
                         f"{clients // CONTACT_SHARE:,} contacts; BatchWriteItem", traced=False)
        loaded[tenant] = {"clients": clients, "contacts": clients // CONTACT_SHARE, "items": done.items,
                          "calls": done.calls, "seconds": round(done.seconds, 1), "items_per_s": round(done.rate)}
    return loaded


def run(b: Bench) -> None:
    big_clients = int(os.environ.get("BENCH_CLIENTS", "10000"))
    sizes = (big_clients, SMALL_CLIENTS)
    loaded = load_tenants(b, big_clients)
    big, small = b.as_tenant("big"), b.as_tenant("small")
    some = [c["id"] for c in _get(big, "/v1/clients?limit=100")()["items"]]
    figures: list[Callable[[], Row | list[Row]]] = [
        lambda: search_rows(big, small, sizes), lambda: chips_row(big, small, sizes), lambda: page_rows(big, sizes),
        lambda: segment_rows(big, small, sizes), import_row, lambda: first_request_row(big, some[0]),
        lambda: stream_row(b, "big", some)]
    rows: list[Row] = []
    for figure in figures:
        try:
            got = figure()
        except Exception as failed:  # one figure's failure is written down, the others still measured
            got = Row(f"failed: {figure}", repr(failed)[:200], "", float("nan"), "", False)
        rows += got if isinstance(got, list) else [got]
        print(f"measured: {rows[-1].figure}", flush=True)
    write_results(rows, loaded, sizes)


def _machine() -> str:
    import platform

    cpus = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    return f"{cpus} cores, {mem:.0f} GiB, Python {platform.python_version()}, {java}, DynamoDB Local 2.x in memory"


def write_results(rows: list[Row], loaded: dict[str, Any], sizes: tuple[int, int]) -> None:
    """This size's entry of bench/results.json and its section of docs/BENCHMARKS.md (between its markers, added
    when new): the default run and the big one are both kept."""
    begin, end = f"<!-- bench:scale {sizes[0]} -->", f"<!-- /bench:scale {sizes[0]} -->"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = _machine()
    results = {"date": stamp, "machine": machine, "clients": {"big": sizes[0], "small": sizes[1]},
               "loaded": loaded, "repeats": REPEATS,
               "figures": [{"figure": r.figure, "ratio": round(r.ratio, 3), "target": r.target, "met": r.met,
                            **r.detail} for r in rows]}
    path = ROOT / "bench" / "results.json"
    runs = json.loads(path.read_text()) if path.exists() else {}
    runs[str(sizes[0])] = results
    path.write_text(json.dumps(dict(sorted(runs.items(), key=lambda kv: -int(kv[0]))), indent=2,
                               ensure_ascii=False) + "\n")
    lines = [begin, "", f"Run {stamp} on {machine}; `BENCH_CLIENTS={sizes[0]}`, p50 of {REPEATS} alternated runs "
             "(`make bench`, then `bench/results.json`).", "",
             "| figure | measured | beside | ratio | target | met |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r.figure} | {r.left} | {r.right} | ×{r.ratio:.2f} | {r.target} | "
                     f"{'yes' if r.met else '**no**'} |")
    load_text = "; ".join(f"`{t}`: {v['clients']:,} clients and {v['contacts']:,} contacts, {v['items']:,} items "
                          f"in {v['seconds']:.0f} s ({v['items_per_s']:,}/s)" for t, v in loaded.items())
    lines += ["", f"Loaded by `bench/loader.py`: {load_text}.", "", end]
    write_section(lines, after="<!-- /bench:scale ")
    print("\n".join(lines[4:-3]))


def write_section(lines: list[str], after: str) -> None:
    """Replace the section between `lines`' first and last line (its markers) in docs/BENCHMARKS.md; a new one goes
    after the last marker starting with `after`, else at the end."""
    begin, end = lines[0], lines[-1]
    doc = ROOT / "docs" / "BENCHMARKS.md"
    text = doc.read_text()
    section = "\n".join(lines)
    if begin in text and end in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        last = text.rfind(after)
        at = text.index("-->", last) + 3 if last >= 0 else len(text.rstrip())
        text = text[:at] + "\n\n" + section + text[at:]
    doc.write_text(text)
