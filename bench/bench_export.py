"""Export 1,000 and 10,000 clients over HTTP on DynamoDB Local: time, rows/s, DynamoDB calls, peak memory."""
from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from bench.common import Bench

TENANT = "bench"  # running_app's token is for this tenant
CITIES = ["Amsterdam", "Zürich", "Kraków", "São Paulo", "Malmö", "Bruxelles", "Köln", "Sevilla"]
WORDS = ["Acme", "Bühne", "Crème", "Delta", "Échelle", "Forum", "Gala", "Halle", "Île", "Jazz", "Kino", "Lumière"]


def _client(n: int) -> dict:
    rnd = random.Random(n)
    name = f"{rnd.choice(WORDS)} {rnd.choice(WORDS)} {n:05d}"
    return {
        "name": name, "type": rnd.choice(["company", "company", "individual", "venue"]),
        "status": rnd.choice(["active", "active", "lead", "trial", "inactive"]),
        "email": f"info{n}@client{n}.test", "phone": f"+31 20 555 {n:04d}", "website": f"https://client{n}.test",
        "industry": rnd.choice(["events", "theatre", "festivals", "corporate"]), "vat_number": f"NL{n:09d}B01",
        "pricing_tier": rnd.choice(["standard", "standard", "preferred", "vip"]), "credit_limit": "25000.00",
        "tags": rnd.sample(["gold", "north", "south", "touring", "=formula", "repeat"], 2),
        "addresses": [{"kind": "billing", "line1": f"Keizersgracht {n}", "city": rnd.choice(CITIES),
                       "postal_code": "1015 CJ", "country": "NL"},
                      {"kind": "visiting", "line1": f"Dam {n % 300}", "city": rnd.choice(CITIES), "country": "NL"}],
    }


def _create(count: int, start: int) -> None:
    """Clients made through the create use case (numbers, facets, counters), in threads: setup, not measured."""
    from chalicelib.domain import client_cases as cases
    from chalicelib.tables.stores import Stores

    stores = Stores(TENANT, "bench-admin")

    def one(n: int) -> None:
        cases.create_client(stores, _client(n))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(start, start + count)))


def _settings(**env: str) -> None:
    from chalicelib.config import reset_settings

    os.environ.update(env)
    reset_settings()


def _export(b: Bench, query: str = "") -> dict:
    """One export request (a 303 is not followed: the download is measured on its own); the body is read in
    chunks, so the client side holds none of it."""
    response = b.call("GET", f"/v1/clients/export{query}", headers={"Accept": "text/csv"}, stream=True,
                      allow_redirects=False)
    size = rows = 0
    for chunk in response.iter_content(1 << 16):
        size += len(chunk)
        rows += chunk.count(b"\r\n")
    assert response.status_code in (200, 303), (response.status_code, response.text[:300])
    return {"status": response.status_code, "bytes": size, "rows": rows - 1,
            "location": response.headers.get("Location")}


def _download(b: Bench, location: str) -> int:
    link = urlsplit(location)
    response = b.call("GET", f"{link.path}?{link.query}", headers={"Accept": "text/csv", "Authorization": ""},
                      stream=True)
    assert response.status_code == 200, response.text[:300]
    return sum(chunk.count(b"\r\n") for chunk in response.iter_content(1 << 16)) - 1


def _untraced(b: Bench, run) -> tuple[float, dict]:
    """The same run without tracemalloc (which slows Python two to three times): the time a caller waits."""
    start = time.perf_counter()
    out = run()
    return time.perf_counter() - start, out


def run(b: Bench) -> None:
    data_dir = os.environ.get("DATA_DIR", "/tmp")
    saved = {k: os.environ.get(k) for k in ("S3_LOCAL_DIR", "EXPORT_INLINE_MAX_BYTES")}
    _settings(S3_LOCAL_DIR=os.path.join(data_dir, "s3"))
    try:
        made = 0
        for total in (1_000, 10_000):
            _create(total - made, made)
            made = total
            _settings(EXPORT_INLINE_MAX_BYTES=str(4 * 1024 * 1024))
            plain, _ = _untraced(b, lambda: _export(b))
            out = b.measure(f"export {total:,} clients (default: inline up to 4 MiB)", total, lambda: _export(b))
            assert out["rows"] == total or out["status"] == 303, out
            note = f"{out['status']}, {out['bytes'] / 2**20:.1f} MiB" if out["status"] == 200 else "303 link"
            b.figures[-1].notes = f"{note}; {plain:.2f} s untraced ({total / plain:,.0f}/s)"
            if out["status"] == 303:
                rows = b.measure(f"download the {total:,}-client link (local route)", total,
                                 lambda location=out["location"]: _download(b, location))
                assert rows == total, rows
            _settings(EXPORT_INLINE_MAX_BYTES="0")  # every export behind a link: the streaming path alone
            plain, _ = _untraced(b, lambda: _export(b))
            out = b.measure(f"export {total:,} clients to a link (EXPORT_INLINE_MAX_BYTES=0)", total,
                            lambda: _export(b), notes=f"303 link; {plain:.2f} s untraced ({total / plain:,.0f}/s)")
            assert out["status"] == 303, out
            _settings(EXPORT_INLINE_MAX_BYTES=str(4 * 1024 * 1024))
            out = b.measure(f"export {total:,} clients, filter tag=gold&sort=-name", total, lambda: _export(
                b, "?tag=gold&sort=-name"))
            b.figures[-1].items = out["rows"]
            b.figures[-1].notes = f"of {total:,} clients, answered {out['status']}"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _settings()
