"""The cost of reading a prescription's stored value objects back typed (issue 13).

`python -m tests.benchmarks.stored_values` (no services; a few seconds). For the richest
sample (newrx_full.xml: structured Sig, two diagnoses, allergies, signature) the JSON each
column holds, as the database driver gives it back (``json.loads``), is read with
``from_json``: the medication alone (what the checks read of each active medication), then all
four columns of a prescription; beside it, parsing the original bytes again (the other way to
a typed prescription) and identifying a medication by the drug reference. Each figure is the
best of BENCH_REPEAT (5) runs of BENCH_NUMBER (20,000) calls, in microseconds per call.
"""

from __future__ import annotations

import json
import os
import timeit
from collections.abc import Callable
from typing import Any

from eprescribe.checks import identify
from eprescribe.drugs import DrugReference
from eprescribe.ncpdp import (
    MedicationPrescribed,
    NewRx,
    OrderDetails,
    Patient,
    Prescriber,
    from_json,
    parse_message,
)
from server.db import json_dumps
from tests.support.script_samples import FIXTURES

REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
NUMBER = int(os.environ.get("BENCH_NUMBER", "20000"))


def per_call(work: Callable[[], object]) -> float:
    """Microseconds per call of ``work``, the best of the runs."""
    return min(timeit.repeat(work, repeat=REPEAT, number=NUMBER)) / NUMBER * 1e6


def main() -> None:
    raw = (FIXTURES / "newrx_full.xml").read_bytes()
    message = parse_message(raw)
    assert isinstance(message.body, NewRx)
    newrx = message.body
    details = OrderDetails.of(message.header, newrx)
    stored: dict[type[Any], Any] = {
        Patient: json.loads(json_dumps(newrx.patient)),
        Prescriber: json.loads(json_dumps(newrx.prescriber)),
        MedicationPrescribed: json.loads(json_dumps(newrx.medication)),
        OrderDetails: json.loads(json_dumps(details)),
    }
    reference = DrugReference.bundled()
    medication = from_json(MedicationPrescribed, stored[MedicationPrescribed])
    results = {
        "medication, from_json": per_call(
            lambda: from_json(MedicationPrescribed, stored[MedicationPrescribed])
        ),
        "all four columns, from_json": per_call(
            lambda: [from_json(cls, data) for cls, data in stored.items()]
        ),
        "parse_message of the original bytes": per_call(lambda: parse_message(raw)),
        "identify a medication": per_call(lambda: identify(reference, medication)),
    }
    for what, micros in results.items():
        print(f"{what:40} {micros:8.1f} µs")


if __name__ == "__main__":
    main()
