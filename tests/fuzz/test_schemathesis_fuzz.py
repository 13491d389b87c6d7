"""Schemathesis on every operation of /v1/openapi.json, served over HTTP on DynamoDB Local, with every default check."""
from __future__ import annotations

import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from schemathesis.config._checks import POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES
from schemathesis.engine import Status, events, from_schema

from tests.fuzz.conftest import Served

# Examples per operation in the fuzzing phase and scenarios in the stateful one; `make soak` sets hundreds. The
# coverage phase (every boundary and negation the schema defines: ~3000 requests) runs when FUZZ_COVERAGE=1 (soak).
# The seed makes a bounded run repeatable; the soak picks its own (FUZZ_SEED=random).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
COVERAGE = os.environ.get("FUZZ_COVERAGE", "0") == "1"
SEED = None if os.environ.get("FUZZ_SEED") == "random" else int(os.environ.get("FUZZ_SEED", "14"))

pytestmark = [pytest.mark.ddb, pytest.mark.slow]


@dataclass
class Finding:
    operation: str
    check: str
    status: int | None
    method: str
    text: str


@dataclass
class Report:
    operations: set[str] = field(default_factory=set)
    tally: Counter = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    known: Counter = field(default_factory=Counter)
    documented: dict = field(default_factory=dict)

    def failures(self) -> str:
        return "\n".join(dict.fromkeys(f.text for f in self.findings))


# Answers the document writes down for every body (its `x-json-rules`) that JSON Schema cannot state, so
# positive_data_acceptance may meet them: each is let through only while the document still says so.
def _integral_float_refused(finding: Finding, case, answer) -> bool:
    if finding.check != "positive_data_acceptance" or finding.status != 422 or not isinstance(case.body, dict):
        return False
    details = answer.json()["error"]["details"]

    def sent(path: str):
        value = case.body
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    return bool(details) and all(d["message"] == "Input should be a valid integer"
                                 and isinstance(sent(d["field"]), float) and sent(d["field"]).is_integer()
                                 for d in details)


DOCUMENTED = {"without a fraction or exponent": _integral_float_refused}  # a phrase of the rule -> its matcher


def _config(served: Served, doc: dict, phases: list[str]) -> schemathesis.Config:
    operations = []
    for item in doc["paths"].values():
        for op in item.values():
            entry: dict = {"include-operation-id": op["operationId"]}
            if op.get("x-required-role") == "portal":
                entry["headers"] = {"Authorization": f"Bearer {served.portal_token}"}
            rules = sorted({str(rule["status"]) for rule in op.get("x-business-rules", [])})
            if rules:  # the answers the document writes down for valid data that stored data or a rule refuses
                entry["checks"] = {"positive_data_acceptance": {
                    "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, *rules]}}
            if len(entry) > 1:
                operations.append(entry)
    return schemathesis.Config.from_dict({
        "base-url": served.base,
        **({"seed": SEED} if SEED is not None else {}),
        "headers": {"Authorization": f"Bearer {served.staff_token}"},
        "parameters": {f"path.{name}": value for name, value in served.params.items()},
        "generation": {"max-examples": EXAMPLES},
        "phases": {name: {"enabled": name in phases} for name in ("examples", "coverage", "fuzzing", "stateful")},
        "operations": operations,
    })


def _run(served: Served, phases: list[str]) -> Report:
    doc = requests.get(served.base + "/v1/openapi.json", timeout=60).json()
    schema = schemathesis.openapi.from_url(served.base + "/v1/openapi.json", config=_config(served, doc, phases))
    rules = " ".join(doc.get("x-json-rules", []))
    report = Report(documented={phrase: matches for phrase, matches in DOCUMENTED.items() if phrase in rules})
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _collect(report, event.recorder)
            report.tally[f"scenarios_{event.status.value}"] += 1
        elif isinstance(event, events.NonFatalError):
            report.findings.append(Finding(event.label, "error", None, "", f"{event.label}: {event.info.message}"))
        elif isinstance(event, events.FatalError):
            report.findings.append(Finding("", "fatal", None, "", f"fatal: {event.exception!r}"))
    return report


def _collect(report: Report, recorder) -> None:
    report.operations.add(recorder.label)
    report.tally["cases"] += len(recorder.cases)
    report.tally["requests"] += sum(1 for i in recorder.interactions.values() if i.response is not None)
    for case_id, checks in recorder.checks.items():
        for check in checks:
            report.tally["checks"] += 1
            if check.status != Status.FAILURE or check.failure_info is None:
                continue
            failure = check.failure_info.failure
            interaction = recorder.interactions.get(failure.case_id or case_id)
            answer = interaction.response if interaction else None
            node = recorder.cases.get(failure.case_id or case_id) or recorder.cases.get(case_id)
            got = f"{answer.status_code} {answer.content[:400]!r}" if answer else "no response"
            finding = Finding(recorder.label, check.name, answer.status_code if answer else None,
                              answer.request.method if answer else "",
                              f"{recorder.label} [{check.name}] {failure.title}: {failure.message}\n"
                              f"    got {got}\n    {check.failure_info.code_sample}")
            known = [name for name, matches in report.documented.items()
                     if answer is not None and node is not None and matches(finding, node.value, answer)]
            if known:
                report.known[known[0]] += 1
            else:
                report.findings.append(finding)


def _summary(name: str, report: Report, started: float) -> None:
    print(f"\n{name}: {len(report.operations)} operations, {dict(report.tally)}, "
          f"documented rules met {dict(report.known)}, "
          f"{time.monotonic() - started:.0f} s")


def test_every_operation_answers_valid_and_invalid_input_as_its_schema_says(served):
    """Examples and fuzzing phases (and coverage, in the soak): every operation, every default check."""
    started = time.monotonic()
    report = _run(served, ["examples", "coverage", "fuzzing"] if COVERAGE else ["examples", "fuzzing"])
    _summary("stateless", report, started)
    assert len(report.operations) >= 90  # every operation of the document was tried
    assert not report.findings, report.failures()


def test_chains_of_linked_operations_answer_as_the_schema_says(served):
    """The stateful phase: create -> read / change / delete chains from the document's links and inferred ones."""
    started = time.monotonic()
    report = _run(served, ["stateful"])
    _summary("stateful", report, started)
    assert report.tally["cases"] > 0  # links were found and followed
    assert not report.findings, report.failures()


def test_an_undeclared_method_is_405_with_allow(served):
    answer = requests.request("TRACE", served.base + "/v1/clients", timeout=30,
                              headers={"Authorization": f"Bearer {served.staff_token}"})
    assert answer.status_code == 405 and "GET" in answer.headers.get("Allow", "")
    assert answer.json()["error"]["code"] == "method_not_allowed"


def test_an_integer_written_with_a_fraction_is_422_naming_the_field_as_the_document_says(served):
    doc = requests.get(served.base + "/v1/openapi.json", timeout=30).json()
    assert any("`95.0`" in rule for rule in doc["x-json-rules"])
    answer = requests.put(served.base + "/v1/settings/lead-score-thresholds", json={"hot": 90.0, "warm": 40},
                          headers={"Authorization": f"Bearer {served.staff_token}"}, timeout=30)
    assert answer.status_code == 422 and [d["field"] for d in answer.json()["error"]["details"]] == ["hot"]


# --- defects the fuzzing found, fixed in the app; each test failed before its fix


def test_a_communication_range_whose_from_is_after_its_to_is_an_empty_page(served):
    client_id = served.params["client_id"]
    answer = requests.get(f"{served.base}/v1/clients/{client_id}/communications?from=2026-03-01&to=2026-02-01",
                          headers={"Authorization": f"Bearer {served.staff_token}"}, timeout=30)
    assert answer.status_code == 200, answer.text  # was 500: DynamoDB refuses BETWEEN with its bounds reversed
    assert answer.json() == {"items": [], "next_cursor": None}


def test_the_document_says_exactly_which_decimal_texts_and_codes_are_taken(served):
    doc = requests.get(served.base + "/v1/openapi.json", timeout=30).json()["components"]["schemas"]
    money = doc["ClientSettings-Input"]["properties"]["high_value_threshold"]["anyOf"][1]["pattern"]
    assert re.search(money, "1250.00") and not re.search(money, "12abc")  # pydantic's own pattern took "12abc"
    currency = doc["ClientSettingsPatch"]["properties"]["default_currency"]["pattern"]
    assert re.search(currency, "eur") and not re.search(currency, "")
    assert doc["TaskCreate"]["properties"]["title"]["pattern"] == r"\S"  # "\u000b" is empty once stripped
