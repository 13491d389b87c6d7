"""Issue 17's figures: what the logs, metrics and traces cost a cold start and a request, alternated in one run."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from bench.bench_scale import _FIRST_REQUEST, REPEATS, ROOT, Row, _machine, import_row, write_section
from bench.common import Bench

# Before the first-request script of the scale benchmark: the telemetry of every invocation on (both lines to
# stdout, as in Lambda: a pipe here), or off (its invocation replaced by one that measures and writes nothing).
_MODE = """
import contextlib, os
from chalicelib import telemetry
if os.environ["BENCH_TELEMETRY"] == "off":
    @contextlib.contextmanager
    def silent(kind, message, *, dimensions=None, **fields):
        yield telemetry.Invocation(kind, {})
    telemetry.invocation = silent
else:
    telemetry.setting = lambda name, real=telemetry.setting: None if name in ("log_file", "metrics_file") \\
        else real(name)
"""

# aws_xray_sdk builds a botocore client (its sampler's) at import: on a fresh botocore session, or on the shared one.
_XRAY = """
import sys, time
import boto3, botocore.session
from chalicelib import aws
aws.client("dynamodb", region_name="eu-west-1")  # the process's first client, as a request has made by then
if sys.argv[1] == "shared":
    plain = botocore.session.get_session
    def shared(env_vars=None):
        fresh = plain(env_vars)
        fresh.register_component("data_loader", aws.loader())
        return fresh
    botocore.session.get_session = shared
start = time.perf_counter()
import aws_xray_sdk.core
print((time.perf_counter() - start) * 1000)
"""


def _run(code: str, *args: str, env: dict | None = None) -> str:  # the script's last line
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env or os.environ.copy())
    if done.returncode != 0:
        raise AssertionError(done.stderr[-2000:])
    return done.stdout.strip().splitlines()[-1]


def request_rows(b: Bench, path: str) -> list[Row]:
    seen: dict[str, list[dict]] = {"on": [], "off": []}
    for _ in range(max(3, REPEATS // 2)):
        for mode in seen:
            env = {**os.environ, "BENCH_TELEMETRY": mode}
            seen[mode].append(json.loads(_run(_MODE + _FIRST_REQUEST, path, b.token, env=env)))
    p50 = {mode: {k: statistics.median(r[k] for r in runs) for k in ("first_ms", "warm_ms")}
           for mode, runs in seen.items()}
    on, off = p50["on"], p50["off"]
    return [Row("first request, telemetry on ÷ off (`GET /v1/clients/{id}`, fresh process)", f"{on['first_ms']:.1f} ms",
                f"{off['first_ms']:.1f} ms", on["first_ms"] / off["first_ms"], "cost shown", True,
                {"on_ms": round(on["first_ms"], 2), "off_ms": round(off["first_ms"], 2)}),
            Row("warm request, telemetry on ÷ off: one JSON line and one EMF line", f"{on['warm_ms']:.2f} ms",
                f"{off['warm_ms']:.2f} ms", on["warm_ms"] / off["warm_ms"], "cost shown", True,
                {"on_ms": round(on["warm_ms"], 3), "off_ms": round(off["warm_ms"], 3)})]


def xray_row() -> Row:
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-1"}
    got: dict[str, list[float]] = {"shared": [], "fresh": []}
    for _ in range(REPEATS):
        for mode in got:
            got[mode].append(float(_run(_XRAY, mode, env=env)))
    shared, fresh = statistics.median(got["shared"]), statistics.median(got["fresh"])
    return Row("`import aws_xray_sdk.core` when tracing is on: on the shared botocore loader ÷ as the SDK does it",
               f"{shared:.0f} ms", f"{fresh:.0f} ms", shared / fresh, "lower", shared < fresh,
               {"shared_ms": round(shared, 1), "fresh_ms": round(fresh, 1)})


def run(b: Bench) -> None:
    _, created = b.invoke("POST", "/v1/clients", {"name": "Telemetry Bench"})
    rows = [import_row(), *request_rows(b, f"/v1/clients/{created['id']}"), xray_row()]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = ["<!-- bench:telemetry -->", "", f"Run {stamp} on {_machine()}; p50 of alternated fresh processes "
             "(`make bench BENCH=telemetry`). `import app` loads no Powertools and no X-Ray SDK (a test holds it).",
             "", "| figure | measured | beside | ratio | target | met |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r.figure} | {r.left} | {r.right} | ×{r.ratio:.2f} | {r.target} | {'yes' if r.met else '**no**'} |"
              for r in rows]
    lines += ["", "<!-- /bench:telemetry -->"]
    write_section(lines, after="<!-- /bench:scale ")
    print("\n".join(lines[4:-2]))
